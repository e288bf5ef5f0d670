"""conv_transpose2d against torch.nn.functional.conv_transpose2d in float64: output and
the three gradients, on drawn sizes, kernels, strides, paddings and output paddings, and
on larger batches where the kernels run the batch in parallel chunks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import conv_transpose2d
from tests.helpers import random_dy
from tests.ops.test_conv_transpose2d import SEED_KERNEL, SEED_X, SEED_Y, transposed_windows
from tests.ops.test_im2col import seeds

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")
F = torch.nn.functional

RTOL, ATOL = 1e-7, 1e-10  # atol: entries that are zero up to round-off


def close(actual, expected):
    np.testing.assert_allclose(actual, expected.detach().numpy(), rtol=RTOL, atol=ATOL)


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


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


def test_the_seed_example():
    yt = F.conv_transpose2d(torch.tensor(SEED_X[None, None]), torch.tensor(SEED_KERNEL[None, None]))
    np.testing.assert_array_equal(yt.numpy()[0, 0], SEED_Y)
    y = conv_transpose2d.forward(SEED_X[None, None], SEED_KERNEL[None, None], None, (1, 1), (0, 0), (0, 0))
    np.testing.assert_array_equal(y, yt.numpy())
