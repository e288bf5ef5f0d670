"""Binary cross-entropy on logits: the definition, the gradient sigma(x) - y (and its
pos_weight form), no overflow for logits of 1e4, finite differences with a random upstream
gradient, and PyTorch's binary_cross_entropy_with_logits as the oracle."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.ops import bce_with_logits as bce
from tests.helpers import assert_loss_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def draw(shape, seed):
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal(shape), rng.random(shape)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@given(shape=shapes, seed=seeds)
def test_definition_and_the_gradient_is_sigmoid_minus_target(shape, seed):
    x, y = draw(shape, seed)
    s = sigmoid(x)
    expected = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    np.testing.assert_allclose(bce.forward(x, y, None, "none"), expected, rtol=1e-10)
    np.testing.assert_allclose(bce.backward(x, y, None, "sum"), s - y, rtol=1e-10, atol=1e-15)


@given(shape=shapes, seed=seeds)
def test_pos_weight_counts_positives_p_times(shape, seed):
    x, y = draw(shape, seed)
    p = np.random.default_rng(seed % 7).uniform(0.5, 4, shape[-1])
    s = sigmoid(x)
    expected = -(p * y * np.log(s) + (1 - y) * np.log(1 - s))
    np.testing.assert_allclose(bce.forward(x, y, p, "none"), expected, rtol=1e-10)
    np.testing.assert_allclose(bce.backward(x, y, p, "sum"), s * (p * y + 1 - y) - p * y, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_for_logits_of_1e4(dtype):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.5], dtype)
    loss = bce.forward(x, y, None, "none")
    np.testing.assert_allclose(loss, [1e4, 1e4, 0.0, 0.0, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(bce.backward(x, y, None, "sum"), [1, -1, 0, 0, 0], atol=1e-7)
    assert np.isfinite(bce.forward(x, y, np.full(1, 3.0), "mean"))


@given(shape=shapes, seed=seeds, reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans())
def test_backward_matches_central_differences(shape, seed, reduction, weighted):
    x, y = draw(shape, seed)
    p = np.random.default_rng(seed % 5).uniform(0.5, 3, shape[-1]) if weighted else None
    assert_loss_gradient(bce, x, y, (p,), reduction, seed % 1000)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch(reduction, weighted):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for this test (pip install torch)")
    x, y = draw((4, 3), 5)
    x[0, 0], x[1, 1] = 200.0, -300.0
    p = np.array([0.5, 2.0, 4.0]) if weighted else None
    dy = random_dy((4, 3), seed=6) if reduction == "none" else None
    xt = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.tensor(y), reduction=reduction, pos_weight=None if p is None else torch.tensor(p)
    )
    loss.backward(None if dy is None else torch.tensor(dy))
    np.testing.assert_allclose(bce.forward(x, y, p, reduction), loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(bce.backward(x, y, p, reduction, dy), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
