"""ReLU: backward against central differences, and the function's algebra."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from minidl.ops import relu
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def away_from_zero(shape, seed):
    """Values with 0.1 <= |x| <= 2: no element near the kink, where differences are meaningless."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@given(shape=shapes, seed=seeds)
def test_backward_matches_central_differences(shape, seed):
    x = away_from_zero(shape, seed)
    dy = random_dy(shape, seed + 1)
    assert_gradient(relu.backward(dy, x), lambda v: np.sum(relu.forward(v) * dy), x)


@given(shape=shapes, seed=seeds)
def test_forward_is_max_with_zero_and_splits_x(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    x.flat[0] = 0.0
    y = relu.forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(y - relu.forward(-x), x)  # relu(x) - relu(-x) = x
    np.testing.assert_array_equal(relu.forward(y), y)  # idempotent


def test_gradient_at_the_kink_is_zero_and_nan_propagates():
    x = np.array([-1.0, 0.0, 2.0, np.nan])
    np.testing.assert_array_equal(relu.backward(np.ones(4), x), [0.0, 0.0, 1.0, 0.0])
    assert np.isnan(relu.forward(x)[3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    y = relu.forward(x)
    dx = relu.backward(np.ones_like(x), x)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape


def test_non_contiguous_input():
    x = np.random.default_rng(1).standard_normal((4, 3)).T
    np.testing.assert_array_equal(relu.forward(x), np.maximum(x, 0))
