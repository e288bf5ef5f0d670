"""Smooth L1: its two pieces (d^2 / 2 beta inside, |d| - beta / 2 outside) meeting with equal
value and slope, every reduction against finite differences with a random upstream
gradient, and PyTorch's smooth_l1_loss as the oracle."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.ops import smooth_l1
from tests.helpers import assert_loss_gradient, random_dy
from tests.strategies import seeds

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
betas = st.sampled_from([0.0, 0.3, 1.0, 2.5])


def draw(shape, seed):
    rng = np.random.default_rng(seed)
    return 2 * rng.standard_normal(shape), rng.standard_normal(shape)


@given(shape=shapes, seed=seeds, beta=betas)
def test_the_two_pieces(shape, seed, beta):
    pred, target = draw(shape, seed)
    d = pred - target
    inside = np.abs(d) < beta
    expected = np.where(inside, d * d / (2 * beta) if beta else 0.0, np.abs(d) - beta / 2)
    np.testing.assert_allclose(smooth_l1.forward(pred, target, beta, "none"), expected, rtol=1e-12)
    slope = np.where(inside, d / beta if beta else 0.0, np.sign(d))
    np.testing.assert_allclose(smooth_l1.backward(pred, target, beta, "sum"), slope, rtol=1e-12)
    np.testing.assert_allclose(smooth_l1.forward(pred, target, beta, "mean"), expected.mean(), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_the_pieces_meet_with_equal_value_and_slope_at_beta(beta):
    eps = 1e-9
    d = np.array([beta - eps, beta + eps, -beta - eps, -beta + eps])
    loss = smooth_l1.forward(d, np.zeros(4), beta, "none")
    np.testing.assert_allclose(loss, beta / 2, atol=1e-8)
    np.testing.assert_allclose(smooth_l1.backward(d, np.zeros(4), beta, "sum"), [1, 1, -1, -1], atol=1e-8)


def test_beta_zero_is_the_l1_loss():
    pred, target = draw((5, 3), 1)
    assert smooth_l1.forward(pred, target, 0.0, "sum") == pytest.approx(np.abs(pred - target).sum(), rel=1e-12)


@given(shape=shapes, seed=seeds, beta=betas, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_backward_matches_central_differences(shape, seed, beta, reduction):
    pred, target = draw(shape, seed)
    pred[np.abs(np.abs(pred - target) - beta) < 1e-3] += 0.01  # away from the kink at |d| = beta
    pred[np.abs(pred - target) < 1e-3] += 0.01  # and from d = 0 (the kink of beta = 0)
    assert_loss_gradient(smooth_l1, pred, target, (beta,), reduction, seed % 1000)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_matches_torch(reduction, beta):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for this test (pip install torch)")
    pred, target = draw((4, 5), 3)
    dy = random_dy((4, 5), seed=4) if reduction == "none" else None
    pt = torch.tensor(pred, requires_grad=True)
    loss = torch.nn.functional.smooth_l1_loss(pt, torch.tensor(target), reduction=reduction, beta=beta)
    loss.backward(None if dy is None else torch.tensor(dy))
    np.testing.assert_allclose(smooth_l1.forward(pred, target, beta, reduction), loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(smooth_l1.backward(pred, target, beta, reduction, dy), pt.grad.numpy(), rtol=1e-12)
