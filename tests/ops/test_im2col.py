"""im2col / col2im: the columns hold the windows (against a slicing reference), col2im is
the adjoint of im2col, the output-size formula, the picture in the docstring."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops.im2col import col2im, col2im_wide_sample, im2col, im2col_sample, im2col_wide_sample, output_size
from tests.strategies import seeds, windows


def im2col_reference(x, KH, KW, stride, padding):
    """im2col by padding and strided slicing (no shared code with the kernels)."""
    N, C, H, W = x.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((N, C, KH, KW, OH, OW), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            cols[:, :, i, j] = xp[:, :, i : i + sh * OH : sh, j : j + sw * OW : sw]
    return cols.reshape(N, C * KH * KW, OH * OW)


@given(geometry=windows(), N=st.integers(1, 3), C=st.integers(1, 3), seed=seeds)
def test_im2col_matches_the_slicing_reference(geometry, N, C, seed):
    H, W, (KH, KW), stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    np.testing.assert_array_equal(im2col(x, KH, KW, stride, padding), im2col_reference(x, KH, KW, stride, padding))


@given(geometry=windows(), N=st.integers(1, 3), C=st.integers(1, 3), seed=seeds)
def test_col2im_is_the_adjoint_of_im2col(geometry, N, C, seed):
    """<im2col(x), c> = <x, col2im(c)> for every x and c."""
    H, W, (KH, KW), stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    cols = im2col(x, KH, KW, stride, padding)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, KH, KW, stride, padding)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12, atol=1e-12)


def wide_and_plain_columns(xp, KH, KW):
    """One padded image's columns at stride 1 in wide rows and in im2col_sample's layout."""
    C, Hp, Wp = xp.shape
    OH, OW = Hp - KH + 1, Wp - KW + 1
    wide = np.empty((C * KH * KW, (OH - 1) * Wp + OW))
    plain = np.empty((C * KH * KW, OH * OW))
    im2col_wide_sample(xp, KH, KW, 0, wide)
    im2col_sample(xp, KH, KW, 1, 1, OH, OW, plain)
    return wide, plain, OH, OW


@given(geometry=windows(max_stride=1), C=st.integers(1, 3), seed=seeds)
def test_wide_rows_hold_the_same_windows(geometry, C, seed):
    """Column oh*Wp + ow of the wide layout is column oh*OW + ow of im2col_sample's, for
    every real window (ow < OW); the other columns are the wrapped windows."""
    H, W, (KH, KW), _, (ph, pw) = geometry
    xp = np.random.default_rng(seed).standard_normal((C, H + 2 * ph, W + 2 * pw))
    wide, plain, OH, OW = wide_and_plain_columns(xp, KH, KW)
    Wp = xp.shape[2]
    real = [oh * Wp + ow for oh in range(OH) for ow in range(OW)]
    np.testing.assert_array_equal(wide[:, real], plain)


@given(geometry=windows(max_stride=1), C=st.integers(1, 3), seed=seeds, data=st.data())
def test_a_block_of_wide_columns_is_those_columns(geometry, C, seed, data):
    """im2col_wide_sample from column q0 (conv2d's weight gradient, a block at a time)
    writes columns q0, q0 + 1, ... of the whole wide matrix, into a view of a wider one."""
    H, W, (KH, KW), _, (ph, pw) = geometry
    xp = np.random.default_rng(seed).standard_normal((C, H + 2 * ph, W + 2 * pw))
    wide, _, _, _ = wide_and_plain_columns(xp, KH, KW)
    L = wide.shape[1]
    q0 = data.draw(st.integers(0, L - 1), label="q0")
    width = data.draw(st.integers(1, L - q0), label="width")
    block = np.full((wide.shape[0], width + 2), np.nan)
    im2col_wide_sample(xp, KH, KW, q0, block[:, :width])
    np.testing.assert_array_equal(block[:, :width], wide[:, q0 : q0 + width])
    assert np.isnan(block[:, width:]).all()


@given(geometry=windows(max_stride=1), C=st.integers(1, 3), seed=seeds, data=st.data())
def test_wide_col2im_is_the_adjoint_of_wide_im2col(geometry, C, seed, data):
    """<im2col_wide(xp), c> = <xp, col2im_wide(c)>, wrapped columns included; and col2im_wide
    adds onto xp, so two blocks of columns (conv2d's input gradient, a block at a time) add
    up to the whole."""
    H, W, (KH, KW), _, (ph, pw) = geometry
    rng = np.random.default_rng(seed)
    xp = rng.standard_normal((C, H + 2 * ph, W + 2 * pw))
    wide, _, _, _ = wide_and_plain_columns(xp, KH, KW)
    c = rng.standard_normal(wide.shape)
    back = np.zeros_like(xp)
    col2im_wide_sample(c, KH, KW, 0, back)
    np.testing.assert_allclose(np.sum(wide * c), np.sum(xp * back), rtol=1e-12, atol=1e-12)
    q0 = data.draw(st.integers(0, c.shape[1]), label="q0")
    blocks = np.zeros_like(xp)
    col2im_wide_sample(c[:, :q0], KH, KW, 0, blocks)
    col2im_wide_sample(c[:, q0:], KH, KW, q0, blocks)
    np.testing.assert_allclose(blocks, back, rtol=1e-12, atol=1e-12)


@given(geometry=windows(), seed=seeds)
def test_col2im_of_im2col_counts_the_windows_covering_each_pixel(geometry, seed):
    """col2im is not the inverse: col2im(im2col(x)) = x * (number of windows over each pixel)."""
    H, W, (KH, KW), stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((2, 2, H, W))
    count = col2im(im2col(np.ones_like(x), KH, KW, stride, padding), x.shape, KH, KW, stride, padding)
    np.testing.assert_allclose(
        col2im(im2col(x, KH, KW, stride, padding), x.shape, KH, KW, stride, padding), x * count, rtol=1e-12
    )


def test_the_docstring_picture():
    """4x4 image 1..16, 2x2 kernel, stride 1: the patch at (0, 0) is column 0, and pixel 6,
    covered by 4 windows, comes back from col2im(im2col(x)) as 4 * 6."""
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    cols = im2col(x, 2, 2, (1, 1), (0, 0))
    expected = [
        [1, 2, 3, 5, 6, 7, 9, 10, 11],
        [2, 3, 4, 6, 7, 8, 10, 11, 12],
        [5, 6, 7, 9, 10, 11, 13, 14, 15],
        [6, 7, 8, 10, 11, 12, 14, 15, 16],
    ]
    np.testing.assert_array_equal(cols[0], expected)
    back = col2im(cols, x.shape, 2, 2, (1, 1), (0, 0))
    np.testing.assert_array_equal(back[0, 0], [[1, 4, 6, 4], [10, 24, 28, 16], [18, 40, 44, 24], [13, 28, 30, 16]])


@pytest.mark.parametrize(
    "H, KH, S, P, expected",
    [
        (5, 3, 1, 0, 3),
        (5, 3, 1, 1, 5),
        (28, 5, 1, 2, 28),
        (4, 2, 2, 0, 2),
        (7, 3, 2, 1, 4),
        (6, 3, 2, 0, 2),
        (1, 3, 1, 1, 1),
    ],
)
def test_output_size(H, KH, S, P, expected):
    assert output_size(H, KH, S, P) == expected


def test_padding_is_zero_and_shapes_follow_the_formula():
    x = np.ones((2, 3, 5, 4))
    cols = im2col(x, 3, 2, (2, 1), (1, 1))
    OH, OW = output_size(5, 3, 2, 1), output_size(4, 2, 1, 1)
    assert cols.shape == (2, 3 * 3 * 2, OH * OW)
    # the window at (0, 0) hangs over the top-left corner: of its 3x2 elements of channel 0,
    # rows r = (c*KH + i)*KW + j = 0..5, only (i, j) = (1, 1) and (2, 1) fall on pixels
    np.testing.assert_array_equal(cols[0, :6, 0], [0, 0, 0, 1, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    cols = im2col(x, 3, 3, (1, 1), (1, 1))
    assert cols.dtype == dtype
    assert col2im(cols, x.shape, 3, 3, (1, 1), (1, 1)).dtype == dtype


def test_non_contiguous_input_is_accepted():
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 6)).transpose(0, 1, 3, 2)  # (4, 3, 6, 5), strided
    np.testing.assert_array_equal(
        im2col(x, 2, 3, (1, 2), (1, 0)), im2col_reference(np.ascontiguousarray(x), 2, 3, (1, 2), (1, 0))
    )


def test_col2im_refuses_columns_of_the_wrong_shape():
    """The kernel reads cols by the sizes of x_shape: other columns would be read out of bounds."""
    with pytest.raises(ValueError, match=r"cols must have shape \(1, 9, 4\), got \(1, 9, 5\)"):
        col2im(np.zeros((1, 9, 5)), (1, 1, 4, 4), 3, 3, (1, 1), (0, 0))
