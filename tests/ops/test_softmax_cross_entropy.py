"""Softmax cross-entropy, (N, K) and per-pixel (N, K, H, W): gradients against central
differences (with and without class weights), the softmax's algebra, extreme logits."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import softmax_cross_entropy as sce
from tests.helpers import assert_gradient
from tests.strategies import seeds


def draw(shape, seed, weighted=False, scale=3.0):
    """Logits of ``shape`` (N, K, ...), labels (N, ...) in [0, K), optional weights (K,)."""
    rng = np.random.default_rng(seed)
    N, K = shape[:2]
    logits = scale * rng.standard_normal(shape)
    labels = rng.integers(0, K, (N,) + tuple(shape[2:]))
    weight = rng.uniform(0.1, 3.0, K) if weighted else None
    return logits, labels, weight


shapes_2d = st.tuples(st.integers(1, 4), st.integers(1, 5))
shapes_4d = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@given(shape=st.one_of(shapes_2d, shapes_4d), weighted=st.booleans(), seed=seeds)
def test_backward_matches_central_differences(shape, weighted, seed):
    logits, labels, weight = draw(shape, seed, weighted)
    _, probs = sce.forward(logits, labels, weight)
    dlogits = sce.backward(probs, labels, weight)
    assert_gradient(dlogits, lambda z: sce.forward(z, labels, weight)[0], logits)


@given(shape=st.one_of(shapes_2d, shapes_4d), seed=seeds)
def test_softmax_sums_to_one_and_is_invariant_to_a_constant_per_position(shape, seed):
    logits, labels, _ = draw(shape, seed)
    probs = sce.softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert (probs > 0).all()
    # one constant per row (2-D) or per pixel (4-D), broadcast over the class axis
    c = 100 * np.random.default_rng(seed + 1).standard_normal((shape[0], 1) + tuple(shape[2:]))
    np.testing.assert_allclose(sce.softmax(logits + c), probs, rtol=1e-10, atol=1e-14)
    # the loss lse - z_c cancels digits of numbers near |c| ~ 100: round-off eps * |c| ~ 1e-14
    np.testing.assert_allclose(
        sce.forward(logits + c, labels)[0], sce.forward(logits, labels)[0], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(sce.forward(logits, labels)[1], probs)


@given(shape=st.one_of(shapes_2d, shapes_4d), weighted=st.booleans(), seed=seeds)
def test_gradient_sums_to_zero_over_the_classes(shape, weighted, seed):
    logits, labels, weight = draw(shape, seed, weighted)
    _, probs = sce.forward(logits, labels, weight)
    np.testing.assert_allclose(sce.backward(probs, labels, weight).sum(axis=1), 0.0, atol=1e-15)


@given(shape=shapes_2d, seed=seeds)
def test_loss_is_minus_log_probability_of_the_label(shape, seed):
    logits, labels, weight = draw(shape, seed, weighted=True)
    N = shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    l = np.log(np.exp(z).sum(axis=1)) - z[np.arange(N), labels]
    # a confident prediction's loss is log(1 + tiny): both sides round the sum of
    # exponentials (about 1) to float64, so they agree to ~1e-16 absolute, not relative
    np.testing.assert_allclose(sce.forward(logits, labels)[0], l.mean(), rtol=1e-12, atol=1e-15)
    w = weight[labels]
    np.testing.assert_allclose(
        sce.forward(logits, labels, weight)[0], np.sum(w * l) / np.sum(w), rtol=1e-12, atol=1e-15
    )
    ones = np.ones(shape[1])
    assert sce.forward(logits, labels, ones)[0] == pytest.approx(sce.forward(logits, labels)[0], rel=1e-14)


@given(shape=shapes_4d, weighted=st.booleans(), seed=seeds)
def test_per_pixel_case_equals_the_2d_case_on_pixels_as_samples(shape, weighted, seed):
    logits, labels, weight = draw(shape, seed, weighted)
    N, K, H, W = shape
    rows = logits.transpose(0, 2, 3, 1).reshape(-1, K)  # one row per pixel
    loss4, probs4 = sce.forward(logits, labels, weight)
    loss2, probs2 = sce.forward(rows, labels.reshape(-1), weight)
    assert loss4 == pytest.approx(loss2, rel=1e-12)
    back = probs2.reshape(N, H, W, K).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(probs4, back, rtol=1e-12)
    d2 = sce.backward(probs2, labels.reshape(-1), weight).reshape(N, H, W, K).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(sce.backward(probs4, labels, weight), d2, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_no_nan_or_inf(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    labels = np.array([0, 2, 1])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        loss, probs = sce.forward(logits, labels, np.array([1.0, 2.0, 3.0]))
        dlogits = sce.backward(probs, labels, np.array([1.0, 2.0, 3.0]))
    assert np.isfinite(loss) and np.isfinite(probs).all() and np.isfinite(dlogits).all()
    # losses per row: 0, 2e4, log 3; weights 1, 3, 2
    assert loss == pytest.approx((0 + 3 * 2e4 + 2 * np.log(3)) / 6, rel=1e-6)
    np.testing.assert_allclose(probs[0], [1, 0, 0])
    np.testing.assert_allclose(probs[2], [1 / 3] * 3, rtol=1e-6)


def test_a_hand_computed_example():
    logits = np.array([[0.0, np.log(3.0)]])  # probabilities 1/4, 3/4
    loss, probs = sce.forward(logits, np.array([1]))
    assert loss == pytest.approx(np.log(4 / 3), rel=1e-14)
    np.testing.assert_allclose(probs, [[0.25, 0.75]], rtol=1e-14)
    np.testing.assert_allclose(sce.backward(probs, np.array([1])), [[0.25, -0.25]], rtol=1e-14)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(shape, dtype):
    logits, labels, weight = draw(shape, 0, weighted=True)
    logits = logits.astype(dtype)
    loss, probs = sce.forward(logits, labels.astype(np.int32), weight)
    dlogits = sce.backward(probs, labels.astype(np.int32), weight)
    assert isinstance(loss, float)
    assert probs.dtype == dlogits.dtype == sce.softmax(logits).dtype == dtype
    assert probs.shape == dlogits.shape == shape


SCRIPT = """
import json, numpy as np
from minidl.ops import softmax_cross_entropy as sce
assert type(sce.softmax_kernel).__name__ == "function"  # a plain Python function, not a Numba dispatcher
z = np.arange(24.0).reshape(2, 3, 2, 2) % 5 - 2.0
t = np.array([[[0, 1], [2, 0]], [[1, 1], [2, 2]]])
loss, probs = sce.forward(z, t, np.array([1.0, 2.0, 0.5]))
print(json.dumps([loss, sce.backward(probs, t, np.array([1.0, 2.0, 0.5])).tolist()]))
"""


def test_runs_as_plain_python_with_the_jit_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    loss, dlogits = json.loads(out.stdout)
    z = np.arange(24.0).reshape(2, 3, 2, 2) % 5 - 2.0
    t = np.array([[[0, 1], [2, 0]], [[1, 1], [2, 2]]])
    jit_loss, probs = sce.forward(z, t, np.array([1.0, 2.0, 0.5]))
    assert loss == pytest.approx(jit_loss, rel=1e-14)
    np.testing.assert_allclose(dlogits, sce.backward(probs, t, np.array([1.0, 2.0, 0.5])), rtol=1e-14, atol=1e-17)
