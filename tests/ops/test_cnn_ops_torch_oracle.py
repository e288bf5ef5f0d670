"""The convolutional-network ops against torch.nn.functional, in float64: conv2d,
max_pool2d (values, indices, ties, gradients), avg_pool2d, batch_norm (training,
running statistics, evaluation, gradients)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import avgpool2d, batchnorm, conv2d, maxpool2d
from tests.helpers import random_dy
from tests.ops.test_batchnorm import bn_shapes
from tests.ops.test_batchnorm import draw as draw_bn
from tests.ops.test_im2col import seeds, windows

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")
F = torch.nn.functional

RTOL, ATOL = 1e-7, 1e-10  # atol: entries that are zero up to round-off


def close(actual, expected):
    np.testing.assert_allclose(
        actual, expected.detach().numpy() if torch.is_tensor(expected) else expected, rtol=RTOL, atol=ATOL
    )


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@given(
    geometry=windows(max_size=8),
    N=st.integers(1, 5),
    C=st.integers(1, 3),
    C_out=st.integers(1, 4),
    bias=st.booleans(),
    seed=seeds,
)
def test_conv2d(geometry, N, C, C_out, bias, seed):
    H, W, (KH, KW), stride, padding = geometry
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((C_out, C, KH, KW)), rng.standard_normal(C_out)
    b = b if bias else None
    y = conv2d.forward(x, w, b, stride, padding)
    xt, wt, bt = leaf(x), leaf(w), (leaf(b) if bias else None)
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    close(y, yt)
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv2d.backward(dy, x, w, stride, padding, has_bias=bias)
    close(dx, xt.grad)
    close(dw, wt.grad)
    if bias:
        close(db, bt.grad)


@given(
    geometry=windows(half_padding=True, max_size=8),
    N=st.integers(1, 3),
    C=st.integers(1, 3),
    seed=seeds,
    integers=st.booleans(),
)
def test_max_pool2d(geometry, N, C, seed, integers):
    """Values, arg-max indices and gradients; with small integer inputs (many ties) the
    indices check that both pick the first maximum."""
    H, W, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (N, C, H, W)).astype(np.float64) if integers else rng.standard_normal((N, C, H, W))
    y, argmax = maxpool2d.forward(x, kernel, stride, padding)
    xt = leaf(x)
    yt, indices = F.max_pool2d(xt, kernel, stride, padding, return_indices=True)
    close(y, yt)
    np.testing.assert_array_equal(argmax, indices.numpy())
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    close(maxpool2d.backward(dy, argmax, x.shape, kernel, stride, padding), xt.grad)


@given(geometry=windows(half_padding=True, max_size=8), N=st.integers(1, 3), C=st.integers(1, 3), seed=seeds)
def test_avg_pool2d(geometry, N, C, seed):
    H, W, kernel, stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    y = avgpool2d.forward(x, kernel, stride, padding)
    xt = leaf(x)
    yt = F.avg_pool2d(xt, kernel, stride, padding)  # count_include_pad=True, PyTorch's default
    close(y, yt)
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    close(avgpool2d.backward(dy, x.shape, kernel, stride, padding), xt.grad)


@given(shape=bn_shapes(), seed=seeds)
def test_batch_norm_training_and_running_statistics(shape, seed):
    x, gamma, beta = draw_bn(shape, seed)
    rng = np.random.default_rng(seed + 2)
    running_mean, running_var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    rm_t, rv_t = torch.tensor(running_mean), torch.tensor(running_var)
    xt, gt, bt = leaf(x), leaf(gamma), leaf(beta)
    yt = F.batch_norm(xt, rm_t, rv_t, gt, bt, training=True, momentum=0.1, eps=1e-5)  # updates rm_t, rv_t

    y, cache = batchnorm.forward_train(x, gamma, beta, 1e-5)
    close(y, yt)
    new_mean, new_var = batchnorm.update_running_stats(
        running_mean, running_var, cache["mean"], cache["var"], cache["m"], 0.1
    )
    close(new_mean, rm_t)
    close(new_var, rv_t)

    dy = random_dy(shape, seed + 1)
    yt.backward(torch.tensor(dy))
    for backward in (batchnorm.backward, batchnorm.backward_compact):
        dx, dgamma, dbeta = backward(dy, gamma, cache)
        close(dx, xt.grad)
        close(dgamma, gt.grad)
        close(dbeta, bt.grad)


@given(shape=bn_shapes(), seed=seeds)
def test_batch_norm_evaluation(shape, seed):
    x, gamma, beta = draw_bn(shape, seed)
    rng = np.random.default_rng(seed + 2)
    running_mean, running_var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    yt = F.batch_norm(
        torch.tensor(x),
        torch.tensor(running_mean),
        torch.tensor(running_var),
        torch.tensor(gamma),
        torch.tensor(beta),
        training=False,
        eps=1e-5,
    )
    close(batchnorm.forward_eval(x, gamma, beta, running_mean, running_var, 1e-5), yt)
