"""Sigmoid: backward against central differences, stability for large |x|, symmetry."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from minidl.ops import sigmoid
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


@given(shape=shapes, seed=seeds)
def test_backward_matches_central_differences(shape, seed):
    x = 3 * np.random.default_rng(seed).standard_normal(shape)
    dy = random_dy(shape, seed + 1)
    dx = sigmoid.backward(dy, sigmoid.forward(x))
    assert_gradient(dx, lambda v: np.sum(sigmoid.forward(v) * dy), x)


@given(shape=shapes, seed=seeds)
def test_matches_the_textbook_formula_and_is_symmetric(shape, seed):
    x = 5 * np.random.default_rng(seed).standard_normal(shape)
    y = sigmoid.forward(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(sigmoid.forward(-x), 1 - y, rtol=1e-12, atol=1e-15)  # s(-x) = 1 - s(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_magnitude_1e3_and_equal_to_its_limits(dtype):
    x = np.array([-1e3, -800.0, -100.0, 0.0, 100.0, 800.0, 1e3], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = sigmoid.forward(x)
        dx = sigmoid.backward(np.ones_like(x), y)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert y[0] == 0.0 and y[1] == 0.0 and y[-1] == 1.0 and y[-2] == 1.0 and y[3] == 0.5
    assert dx[0] == 0.0 and dx[-1] == 0.0 and dx[3] == 0.25


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    y = sigmoid.forward(x)
    dx = sigmoid.backward(np.ones_like(x), y)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
