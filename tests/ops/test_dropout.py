"""Inverted dropout: gradient against central differences for drawn masks and p, the
expected value, p = 0 and p = 1, reproducible masks."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl
from minidl.ops import dropout
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
probabilities = st.floats(0.0, 1.0)


@st.composite
def masks(draw):
    shape = draw(shapes)
    return draw(hnp.arrays(np.bool_, shape))


@given(mask=masks(), p=probabilities, seed=seeds)
def test_backward_matches_central_differences(mask, p, seed):
    x = np.random.default_rng(seed).standard_normal(mask.shape)
    dy = random_dy(mask.shape, seed + 1)
    dx = dropout.backward(dy, mask, p)
    assert_gradient(dx, lambda v: np.sum(dropout.forward(v, mask, p) * dy), x)


@given(mask=masks(), p=st.floats(0.0, 0.99), seed=seeds)
def test_kept_elements_are_scaled_and_dropped_ones_are_zero(mask, p, seed):
    x = np.random.default_rng(seed).standard_normal(mask.shape)
    y = dropout.forward(x, mask, p)
    np.testing.assert_allclose(y[mask], x[mask] / (1 - p), rtol=1e-14)
    assert not y[~mask].any()
    np.testing.assert_array_equal(dropout.forward(x, mask.astype(np.float64), p), y)  # a 0/1 mask works too


def test_p_one_gives_zeros_without_dividing_by_zero():
    x = np.random.default_rng(0).standard_normal((3, 4))
    mask = dropout.make_mask(x.shape, 1.0, np.random.default_rng(0))
    assert not mask.any()
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = dropout.forward(x, mask, 1.0)
        dx = dropout.backward(np.ones_like(x), mask, 1.0)
    assert not y.any() and not dx.any() and np.isfinite(y).all()


def test_p_zero_keeps_everything_unchanged():
    x = np.random.default_rng(0).standard_normal((3, 4))
    mask = dropout.make_mask(x.shape, 0.0, np.random.default_rng(0))
    assert mask.all()
    np.testing.assert_array_equal(dropout.forward(x, mask, 0.0), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_expected_value_is_preserved(p):
    """The mean of y over many masks tends to x (5 standard errors, seeded: not flaky)."""
    x = np.array([1.0, -2.0, 0.5, 3.0])
    M = 4000
    rng = np.random.default_rng(7)
    mask = dropout.make_mask((M, x.size), p, rng)
    mean = dropout.forward(np.tile(x, (M, 1)), mask, p).mean(axis=0)
    stderr = np.abs(x) * np.sqrt(p / (1 - p) / M)
    assert (np.abs(mean - x) <= 5 * stderr).all(), (mean, x)
    assert abs(mask.mean() - (1 - p)) <= 5 * np.sqrt(p * (1 - p) / mask.size)


def test_masks_are_reproducible_with_minidl_seed():
    minidl.seed(5)
    m1 = dropout.make_mask((6, 7), 0.5, minidl.rng.get_rng())
    m2 = dropout.make_mask((6, 7), 0.5, minidl.rng.get_rng())
    minidl.seed(5)
    np.testing.assert_array_equal(dropout.make_mask((6, 7), 0.5, minidl.rng.get_rng()), m1)
    assert m1.dtype == np.bool_ and m1.shape == (6, 7)
    assert (m1 != m2).any()  # a fresh mask each call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    mask = dropout.make_mask(x.shape, 0.3, np.random.default_rng(1))
    y = dropout.forward(x, mask, 0.3)
    dx = dropout.backward(np.ones_like(x), mask, 0.3)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
