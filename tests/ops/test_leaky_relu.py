"""Leaky ReLU: backward against central differences, and the function's algebra."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.ops import leaky_relu, relu
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
slopes = st.floats(0.0, 1.0)


def away_from_zero(shape, seed):
    """Values with 0.1 <= |x| <= 2: no element near the kink."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@given(shape=shapes, seed=seeds, a=slopes)
def test_backward_matches_central_differences(shape, seed, a):
    x = away_from_zero(shape, seed)
    dy = random_dy(shape, seed + 1)
    dx = leaky_relu.backward(dy, x, a)
    assert_gradient(dx, lambda v: np.sum(leaky_relu.forward(v, a) * dy), x)


@given(shape=shapes, seed=seeds, a=slopes)
def test_forward_is_x_or_slope_times_x(shape, seed, a):
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(leaky_relu.forward(x, a), np.where(x > 0, x, a * x))


def test_slope_one_is_the_identity_and_slope_zero_is_relu():
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_array_equal(leaky_relu.forward(x, 1.0), x)
    np.testing.assert_array_equal(leaky_relu.forward(x, 0.0), relu.forward(x))
    np.testing.assert_array_equal(leaky_relu.backward(np.ones_like(x), x, 1.0), np.ones_like(x))


def test_default_slope_and_gradient_at_the_kink():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(leaky_relu.forward(x), [-0.02, 0.0, 3.0])
    np.testing.assert_allclose(leaky_relu.backward(np.ones(3), x), [0.01, 0.01, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    y = leaky_relu.forward(x, 0.2)
    dx = leaky_relu.backward(np.ones_like(x), x, 0.2)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
