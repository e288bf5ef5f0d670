"""Mean squared error: gradient against central differences, and its definition."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from minidl.ops import mse
from tests.helpers import assert_gradient
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def draw(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape)


@given(shape=shapes, seed=seeds)
def test_backward_matches_central_differences(shape, seed):
    pred, target = draw(shape, seed)
    assert_gradient(mse.backward(pred, target), lambda v: mse.forward(v, target), pred)


@given(shape=shapes, seed=seeds)
def test_is_the_mean_of_squares_and_its_gradient_formula(shape, seed):
    pred, target = draw(shape, seed)
    loss = mse.forward(pred, target)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, np.mean((pred - target) ** 2), rtol=1e-12)
    np.testing.assert_allclose(mse.backward(pred, target), 2 * (pred - target) / pred.size, rtol=1e-12)
    assert mse.forward(pred, pred) == 0.0 and not mse.backward(pred, pred).any()
    assert mse.forward(target, pred) == loss  # symmetric


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_and_a_target_of_the_other_precision_is_cast(dtype):
    pred, target = draw((3, 4), 0)
    pred = pred.astype(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    dpred = mse.backward(pred, target.astype(other))
    assert dpred.dtype == dtype and dpred.shape == pred.shape
    np.testing.assert_allclose(mse.forward(pred, target.astype(other)), np.mean((pred - target) ** 2), rtol=1e-5)
