"""conv_transpose2d: the course's worked example (the 16x4 matrix U^T), every gradient
against central differences on drawn sizes/kernels/strides/paddings/output paddings, the
adjoint identity with conv2d, the loop definition (a scatter), what output_padding adds,
the output-size rule, bias handling, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import conv2d, conv_transpose2d
from tests.helpers import assert_gradient, one_numba_thread, random_dy
from tests.strategies import seeds, transposed_windows


def draw(N, C_in, C_out, H, W, KH, KW, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    w = rng.standard_normal((C_in, C_out, KH, KW)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    return x, w, b


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding):
    """The sum of the docstring as plain loops: every input pixel scatters a scaled copy of
    the kernel onto the output window at (oh*sh - ph, ow*sw - pw)."""
    N, C_in, H, W = x.shape
    _, C_out, KH, KW = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    OH, OW = (H - 1) * sh - 2 * ph + KH + oph, (W - 1) * sw - 2 * pw + KW + opw
    y = np.zeros((N, C_out, OH, OW))
    if b is not None:
        y += b[None, :, None, None]
    for n in range(N):
        for c in range(C_in):
            for oh in range(H):
                for ow in range(W):
                    for co in range(C_out):
                        for i in range(KH):
                            for j in range(KW):
                                h, v = oh * sh - ph + i, ow * sw - pw + j
                                if 0 <= h < OH and 0 <= v < OW:
                                    y[n, co, h, v] += x[n, c, oh, ow] * w[c, co, i, j]
    return y


# The course's example: a 3x3 kernel over a 4x4 input is the 4x16 matrix U (stride 1, no
# padding: 4x4 -> 2x2); its transposed convolution takes the 2x2 input back to 4x4.
WORKED_KERNEL = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float64)
WORKED_X = np.array([[2, 1], [4, 4]], dtype=np.float64)
WORKED_Y = np.array([[2, 9, 6, 1], [6, 29, 30, 7], [10, 29, 33, 13], [12, 24, 16, 4]], dtype=np.float64)
EXAMPLE_U_T = np.array(
    [  # the worked example's 16x4 matrix, row by row
        [1, 0, 0, 0],
        [4, 1, 0, 0],
        [1, 4, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [4, 1, 4, 1],
        [3, 4, 1, 4],
        [0, 3, 0, 1],
        [3, 0, 1, 0],
        [3, 3, 4, 1],
        [1, 3, 3, 4],
        [0, 1, 0, 3],
        [0, 0, 3, 0],
        [0, 0, 3, 3],
        [0, 0, 1, 3],
        [0, 0, 0, 1],
    ],
    dtype=np.float64,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_worked_example_2x2_to_4x4(dtype):
    x, w = WORKED_X[None, None].astype(dtype), WORKED_KERNEL[None, None].astype(dtype)
    y = conv_transpose2d.forward(x, w, None, (1, 1), (0, 0), (0, 0))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[0, 0], WORKED_Y)


def test_the_seed_matrix_is_the_transpose_of_the_convolution():
    """Column k of U^T is the transposed convolution of the k-th unit 2x2 input; row k of U
    is the convolution of a 4x4 input read at output pixel k. Both give the worked example's matrix."""
    w = WORKED_KERNEL[None, None]
    units = np.eye(4).reshape(4, 1, 2, 2)
    U_T = conv_transpose2d.forward(units, w, None, (1, 1), (0, 0), (0, 0)).reshape(4, 16).T
    np.testing.assert_array_equal(U_T, EXAMPLE_U_T)
    U = conv2d.forward(np.eye(16).reshape(16, 1, 4, 4), w, None, (1, 1), (0, 0)).reshape(16, 4).T
    np.testing.assert_array_equal(U, EXAMPLE_U_T.T)
    np.testing.assert_array_equal(EXAMPLE_U_T @ WORKED_X.reshape(4), WORKED_Y.reshape(16))


@given(
    geometry=transposed_windows(),
    N=st.integers(1, 3),
    C_in=st.integers(1, 3),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_forward_matches_the_loop_definition(geometry, N, C_in, C_out, bias, seed):
    H, W, (KH, KW), stride, padding, output_padding = geometry
    x, w, b = draw(N, C_in, C_out, H, W, KH, KW, seed)
    b = b if bias else None
    np.testing.assert_allclose(
        conv_transpose2d.forward(x, w, b, stride, padding, output_padding),
        conv_transpose2d_reference(x, w, b, stride, padding, output_padding),
        rtol=1e-12,
        atol=1e-12,
    )


@given(
    geometry=transposed_windows(),
    N=st.integers(1, 2),
    C_in=st.integers(1, 2),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_backward_matches_central_differences(geometry, N, C_in, C_out, bias, seed):
    H, W, (KH, KW), stride, padding, output_padding = geometry
    x, w, b = draw(N, C_in, C_out, H, W, KH, KW, seed)
    b = b if bias else None
    y = conv_transpose2d.forward(x, w, b, stride, padding, output_padding)
    dy = random_dy(y.shape, seed + 1)
    dx, dw, db = conv_transpose2d.backward(dy, x, w, stride, padding, has_bias=bias)

    def f(x_, w_, b_):
        return np.sum(conv_transpose2d.forward(x_, w_, b_, stride, padding, output_padding) * dy)

    with one_numba_thread():
        assert_gradient(dx, lambda v: f(v, w, b), x, name="x")
        assert_gradient(dw, lambda v: f(x, v, b), w, name="w")
        if bias:
            assert_gradient(db, lambda v: f(x, w, v), b, name="b")
        else:
            assert db is None


@given(
    geometry=transposed_windows(max_size=6),
    N=st.integers(1, 4),
    C_in=st.integers(1, 3),
    C_out=st.integers(1, 3),
    seed=seeds,
)
def test_the_adjoint_identity_with_conv2d(geometry, N, C_in, C_out, seed):
    """<conv2d(z, w), x> = <z, conv_transpose2d(x, w)> for every z of the transposed output's
    size and every x, with the same w: the transposed convolution is U^T. And its backward
    is conv2d's forward: dx = conv2d(dy, w)."""
    H, W, (KH, KW), stride, padding, output_padding = geometry
    x, w, _ = draw(N, C_in, C_out, H, W, KH, KW, seed)
    y = conv_transpose2d.forward(x, w, None, stride, padding, output_padding)
    z = random_dy(y.shape, seed + 1)
    conv_z = conv2d.forward(z, w, None, stride, padding)
    assert conv_z.shape == x.shape  # conv2d maps the transposed output's size back to H x W
    np.testing.assert_allclose(np.sum(conv_z * x), np.sum(z * y), rtol=1e-10, atol=1e-10)
    dx, _, _ = conv_transpose2d.backward(z, x, w, stride, padding)
    np.testing.assert_array_equal(dx, conv_z)


@given(geometry=transposed_windows(), seed=seeds)
def test_output_size_rule_and_conv2d_inverts_it(geometry, seed):
    H, W, (KH, KW), (sh, sw), (ph, pw), (oph, opw) = geometry
    x, w, _ = draw(1, 1, 1, H, W, KH, KW, seed)
    y = conv_transpose2d.forward(x, w, None, (sh, sw), (ph, pw), (oph, opw))
    OH, OW = conv_transpose2d.output_size(H, KH, sh, ph, oph), conv_transpose2d.output_size(W, KW, sw, pw, opw)
    assert y.shape == (1, 1, OH, OW) == (1, 1, (H - 1) * sh - 2 * ph + KH + oph, (W - 1) * sw - 2 * pw + KW + opw)
    assert ((OH + 2 * ph - KH) // sh + 1, (OW + 2 * pw - KW) // sw + 1) == (H, W)


def test_output_padding_rows_past_every_window_receive_only_the_bias():
    """Kernel 3, stride 2, no padding, output_padding 1: 3x3 -> 8x8; the full scatter has
    (3 - 1) 2 + 3 = 7 rows and columns, so row 7 and column 7 hold only the bias, and their
    gradient goes to the bias alone."""
    x, w, b = draw(2, 2, 3, 3, 3, 3, 3, seed=5)
    y = conv_transpose2d.forward(x, w, b, (2, 2), (0, 0), (1, 1))
    assert y.shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(y[:, :, 7, :], np.broadcast_to(b[None, :, None], (2, 3, 8)))
    np.testing.assert_array_equal(y[:, :, :, 7], np.broadcast_to(b[None, :, None], (2, 3, 8)))
    np.testing.assert_array_equal(y[:, :, :7, :7], conv_transpose2d.forward(x, w, b, (2, 2), (0, 0), (0, 0)))
    dy = np.zeros_like(y)
    dy[:, :, 7, :] = 1.0
    dx, dw, db = conv_transpose2d.backward(dy, x, w, (2, 2), (0, 0))
    assert not dx.any() and not dw.any()
    np.testing.assert_array_equal(db, np.full(3, 2 * 8.0))


def test_output_padding_with_padding_gives_back_a_cropped_row():
    """With padding 1, output_padding 1 gives back the bottom row that padding cropped (not
    a bias-only row): kernel 3, stride 2, padding 1, output_padding 1 doubles 3x3 to 6x6."""
    x, w, b = draw(1, 2, 2, 3, 3, 3, 3, seed=6)
    full = conv_transpose2d.forward(x, w, b, (2, 2), (0, 0), (0, 0))  # 7x7, nothing cropped
    y = conv_transpose2d.forward(x, w, b, (2, 2), (1, 1), (1, 1))
    assert y.shape == (1, 2, 6, 6)
    np.testing.assert_allclose(y, full[:, :, 1:7, 1:7], rtol=1e-14, atol=1e-14)


def test_no_bias_is_a_zero_bias():
    x, w, b = draw(3, 2, 4, 4, 3, 3, 2, seed=7)
    args = ((2, 1), (1, 0), (1, 0))
    np.testing.assert_array_equal(
        conv_transpose2d.forward(x, w, None, *args), conv_transpose2d.forward(x, w, np.zeros_like(b), *args)
    )
    y = conv_transpose2d.forward(x, w, None, *args)
    dx, dw, db = conv_transpose2d.backward(random_dy(y.shape), x, w, (2, 1), (1, 0), has_bias=False)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape


def test_a_one_by_one_kernel_with_stride_one_is_a_matrix_product_over_channels():
    x, w, b = draw(2, 3, 4, 5, 5, 1, 1, seed=3)
    expected = np.einsum("co,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]
    np.testing.assert_allclose(conv_transpose2d.forward(x, w, b, (1, 1), (0, 0), (0, 0)), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x, w, b = draw(5, 3, 4, 4, 4, 3, 3, seed=0, dtype=dtype)
    y = conv_transpose2d.forward(x, w, b, (2, 2), (1, 1), (1, 1))
    dx, dw, db = conv_transpose2d.backward(np.ones_like(y), x, w, (2, 2), (1, 1))
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (y.shape, dx.shape, dw.shape, db.shape) == ((5, 4, 8, 8), x.shape, w.shape, (4,))


def test_float32_agrees_with_float64():
    x, w, b = draw(5, 3, 4, 4, 4, 3, 3, seed=1)
    dy = random_dy((5, 4, 8, 8), seed=2)
    args = ((2, 2), (1, 1), (1, 1))
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    np.testing.assert_allclose(
        conv_transpose2d.forward(*f32[:3], *args), conv_transpose2d.forward(x, w, b, *args), rtol=1e-4, atol=1e-4
    )
    grads32 = conv_transpose2d.backward(f32[3], f32[0], f32[1], *args[:2])
    for g32, g64 in zip(grads32, conv_transpose2d.backward(dy, x, w, *args[:2])):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_non_contiguous_arguments_are_accepted():
    x, w, b = draw(2, 3, 4, 4, 4, 3, 3, seed=4)
    x_t = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, strided
    w_t = np.ascontiguousarray(w.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    args = ((2, 2), (1, 1), (1, 1))
    y = conv_transpose2d.forward(x, w, b, *args)
    np.testing.assert_array_equal(conv_transpose2d.forward(x_t, w_t, b, *args), y)
    dy = random_dy(y.shape)
    dy_t = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for g, g_ref in zip(
        conv_transpose2d.backward(dy_t, x_t, w_t, *args[:2]), conv_transpose2d.backward(dy, x, w, *args[:2])
    ):
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)
