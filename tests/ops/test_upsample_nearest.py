"""Nearest-neighbour upsampling: a worked example, backward against central differences,
the adjoint identity <up(x), dy> = <x, up^T(dy)>, the gradient is conserved, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops import upsample_nearest
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds


@st.composite
def geometries(draw):
    """``(x shape (N, C, H, W), (sh, sw))`` with small sides and scales."""
    shape = tuple(draw(st.integers(1, n)) for n in (3, 3, 4, 4))
    scale = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return shape, scale


def test_a_worked_example():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = upsample_nearest.forward(x, (2, 3))
    np.testing.assert_array_equal(
        y[0, 0], [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4], [3, 3, 3, 4, 4, 4]]
    )
    dy = np.arange(24.0).reshape(1, 1, 4, 6)  # each 2x3 block sums into its pixel
    np.testing.assert_array_equal(
        upsample_nearest.backward(dy, (2, 3))[0, 0],
        [[0 + 1 + 2 + 6 + 7 + 8, 3 + 4 + 5 + 9 + 10 + 11], [12 + 13 + 14 + 18 + 19 + 20, 15 + 16 + 17 + 21 + 22 + 23]],
    )


@given(geometry=geometries(), seed=seeds)
def test_forward_is_the_definition(geometry, seed):
    shape, (sh, sw) = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    y = upsample_nearest.forward(x, (sh, sw))
    N, C, H, W = shape
    assert y.shape == (N, C, H * sh, W * sw)
    i, j = np.arange(H * sh), np.arange(W * sw)
    np.testing.assert_array_equal(y, x[:, :, i // sh][:, :, :, j // sw])
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, sh, axis=2), sw, axis=3))


@given(geometry=geometries(), seed=seeds)
def test_backward_matches_central_differences(geometry, seed):
    shape, scale = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    dy = random_dy(upsample_nearest.forward(x, scale).shape, seed + 1)
    dx = upsample_nearest.backward(dy, scale)
    assert_gradient(dx, lambda v: np.sum(upsample_nearest.forward(v, scale) * dy), x)


@given(geometry=geometries(), seed=seeds)
def test_backward_is_the_adjoint_of_forward_and_conserves_the_gradient(geometry, seed):
    """<U x, dy> = <x, U^T dy> for independent random x and dy; sum(U^T dy) = sum(dy)."""
    shape, scale = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    y = upsample_nearest.forward(x, scale)
    dy = random_dy(y.shape, seed + 1)
    dx = upsample_nearest.backward(dy, scale)
    assert np.sum(y * dy) == pytest.approx(np.sum(x * dx), rel=1e-12, abs=1e-12)
    assert np.sum(dx) == pytest.approx(np.sum(dy), rel=1e-12, abs=1e-12)


def test_scale_one_is_the_identity():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(upsample_nearest.forward(x, (1, 1)), x)
    np.testing.assert_array_equal(upsample_nearest.backward(x, (1, 1)), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(dtype)
    y = upsample_nearest.forward(x, (2, 2))
    dx = upsample_nearest.backward(np.ones_like(y), (2, 2))
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx, 4)


def test_non_contiguous_input():
    x = np.random.default_rng(1).standard_normal((3, 2, 4, 5)).transpose(1, 0, 3, 2)  # (2, 3, 5, 4)
    y = upsample_nearest.forward(x, (2, 1))
    np.testing.assert_array_equal(y, np.repeat(x, 2, axis=2))
    dy = np.random.default_rng(2).standard_normal((2, 3, 10, 4))[:, :, ::-1]  # negative strides
    np.testing.assert_allclose(upsample_nearest.backward(dy, (2, 1)), dy[:, :, 0::2] + dy[:, :, 1::2], rtol=1e-15)
