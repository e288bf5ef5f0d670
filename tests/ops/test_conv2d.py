"""conv2d: the course's worked example, every gradient against central differences on
drawn shapes/kernels/strides/paddings, the adjoint identity behind backward_input (and the
transposed convolution), the fast kernels equal to the textbook loops (which pass the
gradient check themselves), bias handling, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import reference_loops
from minidl.ops import conv2d
from minidl.ops.conv2d import BLOCK, SHIFTED_FROM
from minidl.ops.im2col import WIDE_BELOW
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds, windows

# input channels on both sides of the switch to the shifted products (stride 1, conv2d.py)
channels = st.sampled_from([1, 2, 3, SHIFTED_FROM])


def draw(N, C, C_out, H, W, KH, KW, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    return x, w, b


def conv2d_reference(x, w, b, stride, padding):
    """The op's textbook loops (``reference_forward_kernel``), selected as a user would."""
    with reference_loops():
        return conv2d.forward(x, w, b, stride, padding)


# The classic worked 5x5 example: no padding, 5x5 => 3x3.
COURSE_X = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=np.float64
)
COURSE_K = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float64)
COURSE_Y = np.array([[12, 12, 17], [10, 17, 19], [9, 6, 14]], dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_course_example_5x5_to_3x3(dtype):
    y = conv2d.forward(COURSE_X[None, None].astype(dtype), COURSE_K[None, None].astype(dtype), None, (1, 1), (0, 0))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[0, 0], COURSE_Y)


def test_the_course_example_with_padding_keeps_5x5():
    """ "Padding 5x5 => 5x5": the centre 3x3 is the unpadded result."""
    y = conv2d.forward(COURSE_X[None, None], COURSE_K[None, None], None, (1, 1), (1, 1))
    assert y.shape == (1, 1, 5, 5)
    np.testing.assert_array_equal(y[0, 0, 1:4, 1:4], COURSE_Y)
    np.testing.assert_array_equal(y, conv2d_reference(COURSE_X[None, None], COURSE_K[None, None], None, (1, 1), (1, 1)))


@given(
    geometry=windows(),
    N=st.integers(1, 3),
    C=channels,
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_forward_matches_the_loop_definition(geometry, N, C, C_out, bias, seed):
    H, W, (KH, KW), stride, padding = geometry
    x, w, b = draw(N, C, C_out, H, W, KH, KW, seed)
    b = b if bias else None
    np.testing.assert_allclose(
        conv2d.forward(x, w, b, stride, padding), conv2d_reference(x, w, b, stride, padding), rtol=1e-12, atol=1e-12
    )


@given(geometry=windows(), N=st.integers(1, 3), C=channels, C_out=st.integers(1, 3), seed=seeds)
def test_backward_matches_the_loop_definition(geometry, N, C, C_out, seed):
    H, W, (KH, KW), stride, padding = geometry
    x, w, _ = draw(N, C, C_out, H, W, KH, KW, seed)
    dy = random_dy(conv2d.forward(x, w, None, stride, padding).shape, seed + 1)
    fast = conv2d.backward(dy, x, w, stride, padding)
    with reference_loops():
        loops = conv2d.backward(dy, x, w, stride, padding)
    for name, g_fast, g_loops in zip(("dx", "dw", "db"), fast, loops):
        np.testing.assert_allclose(g_fast, g_loops, rtol=1e-12, atol=1e-12, err_msg=name)


@given(geometry=windows(max_size=5), C=st.integers(1, 2), C_out=st.integers(1, 2), seed=seeds)
def test_the_reference_loops_pass_the_gradient_check(geometry, C, C_out, seed):
    """The oracle is checked on its own: its backward against central differences of its forward."""
    H, W, (KH, KW), stride, padding = geometry
    x, w, b = draw(1, C, C_out, H, W, KH, KW, seed)
    with reference_loops():
        dy = random_dy(conv2d.forward(x, w, b, stride, padding).shape, seed + 1)
        dx, dw, db = conv2d.backward(dy, x, w, stride, padding)

        def f(x_, w_, b_):
            return np.sum(conv2d.forward(x_, w_, b_, stride, padding) * dy)

        assert_gradient(dx, lambda v: f(v, w, b), x, name="x")
        assert_gradient(dw, lambda v: f(x, v, b), w, name="w")
        assert_gradient(db, lambda v: f(x, w, v), b, name="b")


@given(
    geometry=windows(),
    N=st.integers(1, 2),
    C=st.integers(1, 3),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_backward_matches_central_differences(geometry, N, C, C_out, bias, seed):
    H, W, (KH, KW), stride, padding = geometry
    x, w, b = draw(N, C, C_out, H, W, KH, KW, seed)
    b = b if bias else None
    y = conv2d.forward(x, w, b, stride, padding)
    dy = random_dy(y.shape, seed + 1)
    dx, dw, db = conv2d.backward(dy, x, w, stride, padding, has_bias=bias)

    def f(x_, w_, b_):
        return np.sum(conv2d.forward(x_, w_, b_, stride, padding) * dy)

    assert_gradient(dx, lambda v: f(v, w, b), x, name="x")
    assert_gradient(dw, lambda v: f(x, v, b), w, name="w")
    if bias:
        assert_gradient(db, lambda v: f(x, w, v), b, name="b")
    else:
        assert db is None


@pytest.mark.parametrize("OW_offset", [-1, 0, 1])
@pytest.mark.parametrize("KW, pw", [(1, 0), (3, 1), (5, 0)])
def test_both_column_layouts_match_the_loops(OW_offset, KW, pw):
    """With few channels at stride 1, the kernels in wide rows run for outputs narrower
    than WIDE_BELOW and im2col's from there on (conv2d.py, ``_wide``): widths on both sides
    of the switch give the loops' forward and gradients."""
    OW = WIDE_BELOW + OW_offset
    x, w, b = draw(2, 2, 3, 4, OW + KW - 1 - 2 * pw, 2, KW, seed=OW + KW)
    y = conv2d.forward(x, w, b, (1, 1), (1, pw))
    assert y.shape[3] == OW
    np.testing.assert_allclose(y, conv2d_reference(x, w, b, (1, 1), (1, pw)), rtol=1e-12, atol=1e-12)
    dy = random_dy(y.shape, seed=OW)
    fast = conv2d.backward(dy, x, w, (1, 1), (1, pw))
    with reference_loops():
        loops = conv2d.backward(dy, x, w, (1, 1), (1, pw))
    for name, g_fast, g_loops in zip(("dx", "dw", "db"), fast, loops):
        np.testing.assert_allclose(g_fast, g_loops, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("C", [SHIFTED_FROM - 1, SHIFTED_FROM])
@pytest.mark.parametrize(
    "H, W, KH, KW, padding",
    [(5, 7, 3, 2, (1, 0)), (4, 4, 1, 1, (0, 0)), (3, 3, 4, 4, (3, 3)), (17, 20, 3, 3, (1, 1)), (30, 12, 3, 3, (1, 1))],
)
def test_im2col_and_the_shifted_products_match_the_loops(C, H, W, KH, KW, padding):
    """At stride 1, from SHIFTED_FROM input channels on, forward and input gradient are
    KH*KW products on shifted blocks of the padded image (conv2d.py); below, one product
    of a block of wide columns (or of im2col's columns, from WIDE_BELOW output columns on).
    Geometries: wide rows with wrapped columns, a 1x1 kernel (no wrapped columns: the
    product goes straight into y), padding as large as the kernel, and more output
    columns than one BLOCK (twice: in im2col's layout below SHIFTED_FROM, then in wide rows)."""
    x, w, b = draw(2, C, 3, H, W, KH, KW, seed=C + H)
    y = conv2d.forward(x, w, b, (1, 1), padding)
    if H > 16:
        assert (y.shape[2] - 1) * (W + 2 * padding[1]) + y.shape[3] > BLOCK
    np.testing.assert_allclose(y, conv2d_reference(x, w, b, (1, 1), padding), rtol=1e-12, atol=1e-12)
    dy = random_dy(y.shape, seed=C)
    fast = conv2d.backward(dy, x, w, (1, 1), padding)
    with reference_loops():
        loops = conv2d.backward(dy, x, w, (1, 1), padding)
    for name, g_fast, g_loops in zip(("dx", "dw", "db"), fast, loops):
        np.testing.assert_allclose(g_fast, g_loops, rtol=1e-12, atol=1e-12, err_msg=name)


@given(geometry=windows(), N=st.integers(1, 5), C=channels, C_out=st.integers(1, 3), seed=seeds)
def test_backward_input_is_the_adjoint_of_the_convolution(geometry, N, C, C_out, seed):
    """<conv(x, w), dy> = <x, backward_input(dy, w)>: the identity the transposed
    convolution is built on. Also <conv(x, w), dy> = <w, dw> (y is linear in w)."""
    H, W, (KH, KW), stride, padding = geometry
    x, w, _ = draw(N, C, C_out, H, W, KH, KW, seed)
    y = conv2d.forward(x, w, None, stride, padding)
    dy = random_dy(y.shape, seed + 1)
    inner = np.sum(y * dy)
    np.testing.assert_allclose(
        np.sum(x * conv2d.backward_input(dy, w, x.shape, stride, padding)), inner, rtol=1e-10, atol=1e-10
    )
    dw, db = conv2d.backward_params(dy, x, w.shape, stride, padding)
    np.testing.assert_allclose(np.sum(w * dw), inner, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


def test_no_bias_is_a_zero_bias():
    x, w, b = draw(3, 2, 4, 6, 5, 3, 2, seed=7)
    np.testing.assert_array_equal(
        conv2d.forward(x, w, None, (1, 2), (1, 0)), conv2d.forward(x, w, np.zeros_like(b), (1, 2), (1, 0))
    )
    dy = random_dy((3, 4, 6, 2))
    dx, dw, db = conv2d.backward(dy, x, w, (1, 2), (1, 0), has_bias=False)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape


def test_a_gradient_of_the_wrong_size_is_refused_before_any_kernel_runs():
    """The kernels walk the padded image by dy's size: a larger dy would index outside it."""
    x, w, _ = draw(3, 2, 4, 6, 5, 3, 2, seed=7)
    for backward in (
        lambda dy: conv2d.backward_input(dy, w, x.shape, (1, 2), (1, 0)),
        lambda dy: conv2d.backward_params(dy, x, w.shape, (1, 2), (1, 0)),
    ):
        with pytest.raises(ValueError, match=r"output's shape \(3, 4, 6, 2\), got \(3, 4, 6, 4\)"):
            backward(random_dy((3, 4, 6, 4)))


def test_a_one_by_one_kernel_is_a_matrix_product_over_channels():
    x, w, b = draw(2, 3, 4, 5, 5, 1, 1, seed=3)
    expected = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]
    np.testing.assert_allclose(conv2d.forward(x, w, b, (1, 1), (0, 0)), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x, w, b = draw(5, 3, 4, 8, 8, 3, 3, seed=0, dtype=dtype)
    y = conv2d.forward(x, w, b, (1, 1), (1, 1))
    dx, dw, db = conv2d.backward(np.ones_like(y), x, w, (1, 1), (1, 1))
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (y.shape, dx.shape, dw.shape, db.shape) == ((5, 4, 8, 8), x.shape, w.shape, (4,))


def test_float32_agrees_with_float64():
    x, w, b = draw(5, 3, 4, 8, 8, 3, 3, seed=1)
    dy = random_dy((5, 4, 4, 4), seed=2)
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    np.testing.assert_allclose(
        conv2d.forward(*f32[:3], (2, 2), (1, 1)), conv2d.forward(x, w, b, (2, 2), (1, 1)), rtol=1e-4, atol=1e-4
    )
    for g32, g64 in zip(
        conv2d.backward(f32[3], f32[0], f32[1], (2, 2), (1, 1)), conv2d.backward(dy, x, w, (2, 2), (1, 1))
    ):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_non_contiguous_arguments_are_accepted():
    x, w, b = draw(2, 3, 4, 6, 6, 3, 3, seed=4)
    x_t = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, strided
    w_t = np.ascontiguousarray(w.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    y = conv2d.forward(x, w, b, (1, 1), (1, 1))
    np.testing.assert_array_equal(conv2d.forward(x_t, w_t, b, (1, 1), (1, 1)), y)
    dy = random_dy(y.shape)
    for g, g_ref in zip(
        conv2d.backward(dy.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3), x_t, w_t, (1, 1), (1, 1)),
        conv2d.backward(dy, x, w, (1, 1), (1, 1)),
    ):
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)
