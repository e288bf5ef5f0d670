"""Max and average pooling: the course's 4x4 grids, ties go to the first maximum,
overlapping windows accumulate, gradients against central differences, average-pool
backward conserves the gradient, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import avgpool2d, maxpool2d
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds, windows

# The classic pooling grids (downsampling an image): 2x2 windows, stride 2.
COURSE_X = np.array([[5, 3, 3, 1], [0, 2, 8, 5], [1, 4, 4, 2], [0, 9, 2, 7]], dtype=np.float64)
COURSE_MAX = np.array([[5, 8], [9, 7]], dtype=np.float64)
COURSE_AVG = np.array([[2.5, 4.25], [3.5, 3.75]], dtype=np.float64)

pool_windows = windows(max_kernel=3, max_stride=3, half_padding=True)


def distinct_values(shape, seed):
    """An input whose values are all at least 0.01 apart: a 1e-6 perturbation never changes
    which pixel of a window is the maximum (no near-ties for the finite differences)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.01 - 1.0).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_course_max_pooling_grid(dtype):
    y, argmax = maxpool2d.forward(COURSE_X[None, None].astype(dtype), (2, 2), (2, 2), (0, 0))
    assert y.dtype == dtype and argmax.dtype == np.int64
    np.testing.assert_array_equal(y[0, 0], COURSE_MAX)
    np.testing.assert_array_equal(argmax[0, 0], [[0, 6], [13, 15]])  # where 5, 8, 9, 7 are: h*4 + w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_course_average_pooling_grid(dtype):
    y = avgpool2d.forward(COURSE_X[None, None].astype(dtype), (2, 2), (2, 2), (0, 0))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[0, 0], COURSE_AVG)


def test_max_pooling_backward_on_the_course_grid_routes_to_the_maxima():
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    _, argmax = maxpool2d.forward(COURSE_X[None, None], (2, 2), (2, 2), (0, 0))
    dx = maxpool2d.backward(dy, argmax, (1, 1, 4, 4), (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 4]])


def test_average_pooling_backward_on_the_course_grid_spreads_evenly():
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = avgpool2d.backward(dy, (1, 1, 4, 4), (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(
        dx[0, 0], [[0.25, 0.25, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 1, 1], [0.75, 0.75, 1, 1]]
    )


@pytest.mark.parametrize(
    "window, first",
    [
        ([[1.0, 1.0], [1.0, 1.0]], 0),
        ([[0.0, 3.0], [3.0, 1.0]], 1),
        ([[0.0, 1.0], [2.0, 2.0]], 2),
        ([[-5.0, -5.0], [-7.0, -5.0]], 0),
    ],
)
def test_max_pooling_ties_go_to_the_first_maximum_in_row_major_order(window, first):
    x = np.array(window)[None, None]
    y, argmax = maxpool2d.forward(x, (2, 2), (2, 2), (0, 0))
    assert y[0, 0, 0, 0] == np.max(window) and argmax[0, 0, 0, 0] == first
    dx = maxpool2d.backward(np.full((1, 1, 1, 1), 2.5), argmax, x.shape, (2, 2), (2, 2), (0, 0))
    expected = np.zeros(4)
    expected[first] = 2.5
    np.testing.assert_array_equal(dx.reshape(-1), expected)


def test_max_pooling_overlapping_windows_accumulate():
    """A pixel that is the maximum of several windows collects all their gradients."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0
    y, argmax = maxpool2d.forward(x, (2, 2), (1, 1), (0, 0))
    np.testing.assert_array_equal(y[0, 0], [[9, 9], [9, 9]])
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = maxpool2d.backward(dy, argmax, x.shape, (2, 2), (1, 1), (0, 0))
    assert dx[0, 0, 1, 1] == 10.0 and np.count_nonzero(dx) == 1


def test_average_pooling_overlapping_windows_accumulate():
    dx = avgpool2d.backward(np.ones((1, 1, 2, 2)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0))
    np.testing.assert_array_equal(dx[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def test_max_pooling_padding_is_never_the_maximum():
    x = -np.ones((1, 1, 2, 2))  # all negative: a zero padding would win
    y, argmax = maxpool2d.forward(x, (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(y[0, 0], -np.ones((3, 3)))
    assert argmax.min() >= 0 and argmax.max() < 4


def test_average_pooling_counts_the_padding_as_zeros():
    y = avgpool2d.forward(np.ones((1, 1, 2, 2)), (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(y[0, 0], [[0.25, 0.25], [0.25, 0.25]])


@given(geometry=pool_windows, N=st.integers(1, 2), C=st.integers(1, 3), seed=seeds)
def test_max_pooling_backward_matches_central_differences(geometry, N, C, seed):
    H, W, kernel, stride, padding = geometry
    x = distinct_values((N, C, H, W), seed)
    y, argmax = maxpool2d.forward(x, kernel, stride, padding)
    dy = random_dy(y.shape, seed + 1)
    dx = maxpool2d.backward(dy, argmax, x.shape, kernel, stride, padding)
    assert_gradient(dx, lambda v: np.sum(maxpool2d.forward(v, kernel, stride, padding)[0] * dy), x)


@given(geometry=pool_windows, N=st.integers(1, 2), C=st.integers(1, 3), seed=seeds)
def test_max_pooling_matches_the_window_maximum(geometry, N, C, seed):
    H, W, (KH, KW), (sh, sw), (ph, pw) = geometry
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    y, argmax = maxpool2d.forward(x, (KH, KW), (sh, sw), (ph, pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    for oh in range(y.shape[2]):
        for ow in range(y.shape[3]):
            window = xp[:, :, oh * sh : oh * sh + KH, ow * sw : ow * sw + KW]
            np.testing.assert_array_equal(y[:, :, oh, ow], window.max(axis=(2, 3)))
    np.testing.assert_array_equal(
        np.take_along_axis(x.reshape(N, C, -1), argmax.reshape(N, C, -1), axis=2), y.reshape(N, C, -1)
    )


@given(stride=st.integers(1, 3), seed=seeds)
def test_the_2x2_loops_without_border_tests_equal_the_general_ones(stride, seed):
    """The kernels' forms for 2x2 windows without padding (``*_inside``) give what the
    general window functions give on every window: the same maximum and index (with ties,
    NaN and -inf), the same mean, the same shares spread onto dx."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([np.nan, -np.inf, -1.0, 0.0, 0.0, 2.0, 5.0]), size=(2, 2, 7, 6))
    OH, OW = (7 - 2) // stride + 1, (6 - 2) // stride + 1
    x_finite = rng.standard_normal(x.shape)
    for n, c, oh, ow in np.ndindex(2, 2, OH, OW):
        general = maxpool2d.window_max(x, n, c, oh, ow, 2, 2, stride, stride, 0, 0)
        inside = maxpool2d.window_max_inside(x, n, c, oh, ow, 2, 2, stride, stride)
        np.testing.assert_array_equal(inside, general)
        assert avgpool2d.window_mean_inside(x_finite, n, c, oh, ow, 2, 2, stride, stride) == avgpool2d.window_mean(
            x_finite, n, c, oh, ow, 2, 2, stride, stride, 0, 0
        )
        dx_general, dx_inside = np.zeros(x.shape), np.zeros(x.shape)
        avgpool2d.spread_share(dx_general, n, c, oh, ow, 0.25, 2, 2, stride, stride, 0, 0)
        avgpool2d.spread_share_inside(dx_inside, n, c, oh, ow, 0.25, 2, 2, stride, stride)
        np.testing.assert_array_equal(dx_inside, dx_general)


@given(geometry=pool_windows, N=st.integers(1, 2), C=st.integers(1, 3), seed=seeds)
def test_average_pooling_backward_matches_central_differences(geometry, N, C, seed):
    H, W, kernel, stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    y = avgpool2d.forward(x, kernel, stride, padding)
    dy = random_dy(y.shape, seed + 1)
    dx = avgpool2d.backward(dy, x.shape, kernel, stride, padding)
    assert_gradient(dx, lambda v: np.sum(avgpool2d.forward(v, kernel, stride, padding) * dy), x)


@given(
    geometry=windows(max_kernel=3, max_stride=3, max_padding=0), N=st.integers(1, 3), C=st.integers(1, 3), seed=seeds
)
def test_average_pooling_backward_conserves_the_gradient(geometry, N, C, seed):
    """Without padding every share lands on a pixel: sum(dx) = sum(dy), and the same holds
    per (image, channel) plane."""
    H, W, kernel, stride, padding = geometry
    dy = random_dy((N, C, (H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1), seed)
    dx = avgpool2d.backward(dy, (N, C, H, W), kernel, stride, padding)
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), dy.sum(axis=(2, 3)), rtol=1e-12, atol=1e-12)


@given(geometry=pool_windows, seed=seeds)
def test_max_pooling_backward_conserves_the_gradient(geometry, seed):
    """Every dy goes, whole, to one pixel (padding is never the maximum)."""
    H, W, kernel, stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((2, 2, H, W))
    y, argmax = maxpool2d.forward(x, kernel, stride, padding)
    dy = random_dy(y.shape, seed + 1)
    np.testing.assert_allclose(
        maxpool2d.backward(dy, argmax, x.shape, kernel, stride, padding).sum(), dy.sum(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 5)).astype(dtype)
    y, argmax = maxpool2d.forward(x, (2, 2), (2, 2), (0, 0))
    assert y.dtype == maxpool2d.backward(np.ones_like(y), argmax, x.shape, (2, 2), (2, 2), (0, 0)).dtype == dtype
    assert y.shape == (3, 2, 3, 2)
    y = avgpool2d.forward(x, (3, 2), (1, 2), (1, 1))
    assert y.dtype == avgpool2d.backward(np.ones_like(y), x.shape, (3, 2), (1, 2), (1, 1)).dtype == dtype
    assert y.shape == (3, 2, 6, 3)
