"""The ops against torch.nn.functional, in float64: conv2d, conv_transpose2d (output and
the three gradients, output padding included, and batches large enough that the kernels
run in parallel chunks), max_pool2d (values, indices, ties, gradients), avg_pool2d,
batch_norm (training, running statistics, evaluation, gradients) and nearest
upsampling (the op and the nn.Upsample layer).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import nn
from minidl.ops import avgpool2d, batchnorm, conv2d, conv_transpose2d, maxpool2d, upsample_nearest
from tests.helpers import batchnorm_inputs, random_dy
from tests.ops.test_conv_transpose2d import WORKED_KERNEL, WORKED_X, WORKED_Y
from tests.ops.test_upsample_nearest import geometries
from tests.strategies import bn_shapes, seeds, transposed_windows, windows

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
    x, gamma, beta = batchnorm_inputs(shape, seed)
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
    x, gamma, beta = batchnorm_inputs(shape, seed)
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


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def compare(x, w, b, stride, padding, output_padding, seed):
    y = conv_transpose2d.forward(x, w, b, stride, padding, output_padding)
    xt, wt, bt = leaf(x), leaf(w), (leaf(b) if b is not None else None)
    yt = F.conv_transpose2d(xt, wt, bt, stride=stride, padding=padding, output_padding=output_padding)
    assert y.shape == tuple(yt.shape)
    close(y, yt)
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv_transpose2d.backward(dy, x, w, stride, padding, has_bias=b is not None)
    close(dx, xt.grad)
    close(dw, wt.grad)
    if b is not None:
        close(db, bt.grad)


@given(
    geometry=transposed_windows(max_size=6, max_kernel=4),
    N=st.integers(1, 4),
    C_in=st.integers(1, 3),
    C_out=st.integers(1, 4),
    bias=st.booleans(),
    seed=seeds,
)
def test_conv_transpose2d(geometry, N, C_in, C_out, bias, seed):
    H, W, (KH, KW), stride, padding, output_padding = geometry
    rng = np.random.default_rng(seed)
    x, w, b = (
        rng.standard_normal((N, C_in, H, W)),
        rng.standard_normal((C_in, C_out, KH, KW)),
        rng.standard_normal(C_out),
    )
    compare(x, w, b if bias else None, stride, padding, output_padding, seed)


@pytest.mark.parametrize(
    "kernel, stride, padding, output_padding",
    [(3, 2, 1, 1), (4, 2, 1, 0), (3, 2, 0, 1), ((3, 2), (3, 2), (1, 0), (2, 1)), (2, 2, 0, 0)],
    ids=["k3s2p1op1-doubling", "k4s2p1", "k3s2p0op1-bias-only-rows", "non-square", "k2s2"],
)
def test_decoder_geometries_on_a_batch(kernel, stride, padding, output_padding):
    """The usual upsampling layers of a decoder, on a batch of 9 images (cut into chunks
    across the Numba threads)."""
    (KH, KW), stride, padding, output_padding = pair(kernel), pair(stride), pair(padding), pair(output_padding)
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((9, 4, 5, 6)), rng.standard_normal((4, 3, KH, KW)), rng.standard_normal(3)
    compare(x, w, b, stride, padding, output_padding, seed=1)


def test_the_worked_example():
    yt = F.conv_transpose2d(torch.tensor(WORKED_X[None, None]), torch.tensor(WORKED_KERNEL[None, None]))
    np.testing.assert_array_equal(yt.numpy()[0, 0], WORKED_Y)
    y = conv_transpose2d.forward(WORKED_X[None, None], WORKED_KERNEL[None, None], None, (1, 1), (0, 0), (0, 0))
    np.testing.assert_array_equal(y, yt.numpy())


@given(geometry=geometries(), seed=seeds)
def test_op_values_and_gradients(geometry, seed):
    shape, scale = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.interpolate(xt, scale_factor=scale, mode="nearest")
    y = upsample_nearest.forward(x, scale)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL)
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(upsample_nearest.backward(dy, scale), xt.grad.numpy(), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("scale_factor", [2, (3, 1), (1, 2)])
def test_layer_matches_torch_upsample(scale_factor):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = nn.Upsample(scale_factor)
    torch_layer = torch.nn.Upsample(scale_factor=scale_factor, mode="nearest")
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_layer(xt)
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=RTOL)
    dy = random_dy(tuple(yt.shape), 1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=RTOL, atol=1e-12)
