"""Tanh: backward against central differences, agreement with NumPy, oddness, stability."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from minidl.ops import sigmoid, tanh
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


@given(shape=shapes, seed=seeds)
def test_backward_matches_central_differences(shape, seed):
    x = 2 * np.random.default_rng(seed).standard_normal(shape)
    dy = random_dy(shape, seed + 1)
    dx = tanh.backward(dy, tanh.forward(x))
    assert_gradient(dx, lambda v: np.sum(tanh.forward(v) * dy), x)


@given(shape=shapes, seed=seeds)
def test_matches_numpy_is_odd_and_is_a_rescaled_sigmoid(shape, seed):
    x = 3 * np.random.default_rng(seed).standard_normal(shape)
    y = tanh.forward(x)
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-14)
    np.testing.assert_array_equal(tanh.forward(-x), -y)
    np.testing.assert_allclose(y, 2 * sigmoid.forward(2 * x) - 1, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_magnitude_1e3(dtype):
    x = np.array([-1e3, 1e3], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = tanh.forward(x)
        dx = tanh.backward(np.ones_like(x), y)
    np.testing.assert_array_equal(y, [-1.0, 1.0])
    np.testing.assert_array_equal(dx, [0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    y = tanh.forward(x)
    dx = tanh.backward(np.ones_like(x), y)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
