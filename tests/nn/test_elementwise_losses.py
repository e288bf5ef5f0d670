"""nn.SmoothL1Loss and nn.BCEWithLogitsLoss: PyTorch's modules as the oracle for every
reduction, backward with and without the upstream gradient, and their errors."""

import numpy as np
import pytest

from minidl import nn
from tests.helpers import raises, randn, random_dy

CASES = [
    ("smooth_l1", lambda r: nn.SmoothL1Loss(reduction=r, beta=0.5), "SmoothL1Loss", dict(beta=0.5)),
    ("bce", lambda r: nn.BCEWithLogitsLoss(reduction=r, pos_weight=[1.0, 3.0, 0.5]), "BCEWithLogitsLoss", {}),
]


def inputs(kind):
    pred = 3 * randn(4, 3)
    target = np.random.default_rng(1).random((4, 3)) if kind == "bce" else randn(4, 3, seed=2)
    return pred, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind, make, torch_name, torch_kwargs", CASES, ids=[c[0] for c in CASES])
def test_matches_the_torch_module(kind, make, torch_name, torch_kwargs, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for this test (pip install torch)")
    pred, target = inputs(kind)
    if kind == "bce":
        torch_kwargs = dict(pos_weight=torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64))
    theirs = getattr(torch.nn, torch_name)(reduction=reduction, **torch_kwargs)
    pt = torch.tensor(pred, requires_grad=True)
    t_loss = theirs(pt, torch.tensor(target))
    dy = random_dy((4, 3), seed=3) if reduction == "none" else None
    t_loss.backward(None if dy is None else torch.tensor(dy))
    ours = make(reduction)
    loss = ours(pred, target)
    assert isinstance(loss, float) if reduction != "none" else loss.shape == (4, 3)
    np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.backward(dy) if dy is not None else ours.backward(), pt.grad.numpy(), rtol=1e-12)


def test_the_gradient_flows_into_a_model():
    model = nn.Sequential(nn.Linear(3, 2)).to(np.float64)
    loss_fn = nn.BCEWithLogitsLoss()
    x, y = randn(5, 3), np.array([[0, 1], [1, 1], [0, 0], [1, 0], [1, 1]], np.float64)
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    assert model[0].weight.grad.any()


def test_errors():
    pred = randn(2, 3)
    with raises(ValueError, "SmoothL1Loss: reduction must be one of ('mean', 'sum', 'none'), got 'avg'"):
        nn.SmoothL1Loss(reduction="avg")
    with raises(ValueError, "SmoothL1Loss: beta must be a finite number in [0, inf), got -1.0"):
        nn.SmoothL1Loss(beta=-1.0)
    with raises(ValueError, "SmoothL1Loss: pred has shape (2, 3) but target has shape (3, 2)"):
        nn.SmoothL1Loss()(pred, randn(3, 2))
    nan = pred.copy()
    nan[0, 0] = np.nan
    with raises(ValueError, "SmoothL1Loss: found NaN or inf in pred"):
        nn.SmoothL1Loss()(nan, pred)
    with raises(ValueError, "BCEWithLogitsLoss: targets must be in [0, 1] (probabilities), got values from"):
        nn.BCEWithLogitsLoss()(pred, pred)
    with raises(ValueError, "BCEWithLogitsLoss: pos_weight has 2 entries, one per class of the last axis"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])(pred, np.zeros((2, 3)))
    with raises(ValueError, "BCEWithLogitsLoss: pos_weight must be finite and >= 0"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, -2.0])
    loss = nn.SmoothL1Loss(reduction="none")
    loss(pred, pred * 0)
    with raises(TypeError, "with reduction='none' backward(dy) needs the upstream gradient"):
        loss.backward()
    with raises(ValueError, "SmoothL1Loss: expected the upstream gradient dy of shape (2, 3)"):
        loss.backward(randn(3, 2))
    mean = nn.BCEWithLogitsLoss()
    mean(pred, np.zeros((2, 3)))
    with raises(TypeError, "with reduction='mean' the loss is a number: call backward() without dy"):
        mean.backward(randn(2, 3))
    assert repr(nn.BCEWithLogitsLoss(pos_weight=[2.0])) == "BCEWithLogitsLoss(reduction='mean', pos_weight=[2.0])"
