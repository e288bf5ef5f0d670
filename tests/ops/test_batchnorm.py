"""Batch normalization: normalised outputs (mean 0, variance 1 per channel), gradients
against central differences, input gradients summing to zero per channel, the four
equations of the course equal to the compact form, running statistics, evaluation mode,
(N, C) and (N, C, H, W) inputs, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import batchnorm
from tests.helpers import assert_gradient, batchnorm_inputs, random_dy
from tests.strategies import bn_shapes, seeds

EPS = 1e-5


def channel_axes(x):
    return (0,) + tuple(range(2, x.ndim))


@given(shape=bn_shapes(), seed=seeds)
def test_training_output_has_mean_zero_and_variance_one_per_channel(shape, seed):
    x, _, _ = batchnorm_inputs(shape, seed)
    C = shape[1]
    y, cache = batchnorm.forward_train(x, np.ones(C), np.zeros(C), EPS)
    axes = channel_axes(x)
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), var / (var + EPS), rtol=1e-10)  # 1, up to eps
    spread = var > 1e-2  # where eps is negligible against the variance, that is 1 to 1e-3
    np.testing.assert_allclose(y.var(axis=axes)[spread], 1.0, rtol=1e-3)
    np.testing.assert_allclose(cache["mean"], x.mean(axis=axes), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cache["var"], var, rtol=1e-12)
    assert cache["m"] == x.size // C


@given(shape=bn_shapes(), seed=seeds)
def test_gamma_and_beta_scale_and_shift(shape, seed):
    x, gamma, beta = batchnorm_inputs(shape, seed)
    y, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    np.testing.assert_allclose(
        y, gamma.reshape(per_channel) * cache["x_hat"] + beta.reshape(per_channel), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(y.mean(axis=channel_axes(x)), beta, atol=1e-12)


@given(shape=bn_shapes(), seed=seeds)
def test_backward_matches_central_differences(shape, seed):
    x, gamma, beta = batchnorm_inputs(shape, seed)
    dy = random_dy(shape, seed + 1)
    _, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    dx, dgamma, dbeta = batchnorm.backward(dy, gamma, cache)

    def f(x_, gamma_, beta_):
        return np.sum(batchnorm.forward_train(x_, gamma_, beta_, EPS)[0] * dy)

    assert_gradient(dx, lambda v: f(v, gamma, beta), x, name="x")
    assert_gradient(dgamma, lambda v: f(x, v, beta), gamma, name="gamma")
    assert_gradient(dbeta, lambda v: f(x, gamma, v), beta, name="beta")


@given(shape=bn_shapes(), seed=seeds)
def test_input_gradient_sums_to_zero_per_channel(shape, seed):
    x, gamma, beta = batchnorm_inputs(shape, seed)
    _, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    dy = random_dy(shape, seed + 1)
    for backward in (batchnorm.backward, batchnorm.backward_compact):
        dx, _, _ = backward(dy, gamma, cache)
        np.testing.assert_allclose(dx.sum(axis=channel_axes(x)), 0.0, atol=1e-10)


@given(shape=bn_shapes(), seed=seeds)
def test_the_four_equations_equal_the_compact_form(shape, seed):
    x, gamma, beta = batchnorm_inputs(shape, seed)
    _, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    dy = random_dy(shape, seed + 1)
    for four, compact in zip(batchnorm.backward(dy, gamma, cache), batchnorm.backward_compact(dy, gamma, cache)):
        np.testing.assert_allclose(four, compact, rtol=1e-9, atol=1e-11)


@given(shape=bn_shapes(), seed=seeds, momentum=st.sampled_from([0.1, 0.5, 1.0]))
def test_running_statistics_update(shape, seed, momentum):
    """running = (1 - m) running + m batch_stat, the variance unbiased (times n / (n - 1))."""
    x, gamma, beta = batchnorm_inputs(shape, seed)
    _, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    rng = np.random.default_rng(seed + 2)
    running_mean, running_var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    kept = running_mean.copy(), running_var.copy()
    new_mean, new_var = batchnorm.update_running_stats(
        running_mean, running_var, cache["mean"], cache["var"], cache["m"], momentum
    )
    axes = channel_axes(x)
    np.testing.assert_allclose(
        new_mean, (1 - momentum) * running_mean + momentum * x.mean(axis=axes), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(new_var, (1 - momentum) * running_var + momentum * x.var(axis=axes, ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(running_mean, kept[0])  # the inputs are not modified
    np.testing.assert_array_equal(running_var, kept[1])


def test_running_statistics_default_momentum_is_0_1():
    new_mean, new_var = batchnorm.update_running_stats(np.zeros(1), np.ones(1), np.array([2.0]), np.array([3.0]), 4)
    np.testing.assert_allclose(new_mean, [0.2])
    np.testing.assert_allclose(new_var, [0.9 + 0.1 * 3.0 * 4 / 3])


@given(shape=bn_shapes(), seed=seeds)
def test_evaluation_mode_uses_the_running_statistics(shape, seed):
    x, gamma, beta = batchnorm_inputs(shape, seed)
    rng = np.random.default_rng(seed + 2)
    running_mean, running_var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    y = batchnorm.forward_eval(x, gamma, beta, running_mean, running_var, EPS)
    c = (1, -1) + (1,) * (x.ndim - 2)
    expected = gamma.reshape(c) * (x - running_mean.reshape(c)) / np.sqrt(running_var.reshape(c) + EPS) + beta.reshape(
        c
    )
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_evaluation_with_the_batch_statistics_equals_training():
    x, gamma, beta = batchnorm_inputs((5, 3, 4, 4), seed=0)
    y, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    np.testing.assert_allclose(
        batchnorm.forward_eval(x, gamma, beta, cache["mean"], cache["var"], EPS), y, rtol=1e-12, atol=1e-12
    )


def test_eps_is_inside_the_square_root():
    x = np.array([[0.0], [2.0]])  # mean 1, biased variance 1
    y, _ = batchnorm.forward_train(x, np.ones(1), np.zeros(1), 0.5)
    np.testing.assert_allclose(y[:, 0], [-1 / np.sqrt(1.5), 1 / np.sqrt(1.5)], rtol=1e-15)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(shape, dtype):
    x, gamma, beta = batchnorm_inputs(shape, 0, dtype)
    y, cache = batchnorm.forward_train(x, gamma, beta, EPS)
    arrays = [y, cache["x_hat"], cache["mean"], cache["var"], *batchnorm.backward(np.ones_like(y), gamma, cache)]
    arrays += [
        *batchnorm.backward_compact(np.ones_like(y), gamma, cache),
        batchnorm.forward_eval(x, gamma, beta, gamma, gamma, EPS),
    ]
    arrays += [*batchnorm.update_running_stats(gamma, gamma, cache["mean"], cache["var"], cache["m"])]
    assert all(a.dtype == dtype for a in arrays)
    assert y.shape == x.shape == arrays[4].shape


def test_float32_agrees_with_float64():
    x, gamma, beta = batchnorm_inputs((16, 4, 6, 6), seed=3)
    dy = random_dy(x.shape, seed=4)
    y64, c64 = batchnorm.forward_train(x, gamma, beta, EPS)
    y32, c32 = batchnorm.forward_train(x.astype(np.float32), gamma.astype(np.float32), beta.astype(np.float32), EPS)
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    g64 = batchnorm.backward(dy, gamma, c64)
    g32 = batchnorm.backward(dy.astype(np.float32), gamma.astype(np.float32), c32)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
