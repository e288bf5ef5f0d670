"""NaN never hides: max pooling passes it on, batch norm does not learn from it, the
optimizers refuse it and change nothing, the losses refuse it."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidl import nn, optim
from tests.helpers import assert_same_snapshot, raises, snapshot

try:
    import torch
except ImportError:  # the oracle comparison is skipped, the rule-based one still runs
    torch = None


def windows_hold_nan(x, k):
    """(N, C, H//k, W//k): does each non-overlapping k x k window hold a NaN?"""
    N, C, H, W = x.shape
    cut = np.isnan(x[:, :, : H // k * k, : W // k * k])
    return cut.reshape(N, C, H // k, k, W // k, k).any(axis=(3, 5))


@given(
    x=arrays(
        np.float64,
        st.tuples(st.just(1), st.integers(1, 2), st.integers(2, 6), st.integers(2, 6)),
        elements=st.sampled_from([np.nan, -1.0, 0.0, 0.5, 3.0, 7.0]),
    )
)
def test_maxpool_output_is_nan_exactly_where_a_window_holds_one(x):
    pool = nn.MaxPool2d(2)
    y = pool(x)
    np.testing.assert_array_equal(np.isnan(y), windows_hold_nan(x, 2))
    dx = pool.backward(np.ones_like(y))
    # backward routes each window's gradient to its NaN when it has one
    routed = dx[:, :, : y.shape[2] * 2, : y.shape[3] * 2].reshape(*y.shape[:2], y.shape[2], 2, y.shape[3], 2)
    nan_routed = (routed * np.isnan(x[:, :, : y.shape[2] * 2, : y.shape[3] * 2]).reshape(routed.shape)).sum(axis=(3, 5))
    np.testing.assert_array_equal(nan_routed > 0, windows_hold_nan(x, 2))


@pytest.mark.skipif(torch is None, reason="needs PyTorch (pip install torch==2.13.0)")
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 2, 0), (2, 1, 0)])  # the general loop, the 2x2 one
def test_maxpool_nan_matches_pytorch(kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6))
    x[rng.random(x.shape) < 0.15] = np.nan
    pool = nn.MaxPool2d(kernel, stride=stride, padding=padding)
    y = pool(x)
    dy = rng.standard_normal(y.shape)
    dx = pool.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, kernel, stride=stride, padding=padding)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("bad", [np.nan, np.inf, 3e38])
def test_batchnorm_does_not_learn_running_statistics_from_a_bad_batch(bad):
    bn = nn.BatchNorm2d(2)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    bn(x)
    x[1, 1, 0, 0] = bad
    if bad == 3e38:
        x[2, 1, 0, 0] = -3e38  # finite values whose square overflows float32
    before = snapshot(bn)
    with raises(
        ValueError,
        "BatchNorm2d: the batch's mean or variance is NaN or infinite",
        "the running statistics were not updated",
    ):
        bn(x)
    assert_same_snapshot(before, snapshot(bn))


def model_with_grads(make_opt, steps=2):
    """A small model, an optimizer after ``steps`` steps, and a fresh backward."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = make_opt(model.parameters())
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    for _ in range(steps + 1):
        opt.zero_grad()
        model.backward(np.ones_like(model(x)))
        if _ < steps:
            opt.step()
    return model, opt


OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@given(where=st.integers(0, 3), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_an_optimizer_refuses_a_non_finite_gradient_and_changes_nothing(name, where, value):
    model, opt = model_with_grads(OPTIMIZERS[name])
    key, p = model.named_parameters()[where]
    p.grad.reshape(-1)[0] = value
    before = snapshot(model, opt)
    with raises(
        FloatingPointError,
        f"the gradient of {key!r} (shape {p.shape}) holds 1 NaN or infinite",
        "no parameter was updated",
    ):
        opt.step()
    assert_same_snapshot(before, snapshot(model, opt))


def test_check_finite_false_lets_the_step_through():
    model, opt = model_with_grads(lambda ps: optim.SGD(ps, lr=0.1, check_finite=False))
    model.parameters()[0].grad[0, 0] = np.nan
    opt.step()
    assert np.isnan(model.parameters()[0].data[0, 0])


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.1, "0.1"])
def test_a_learning_rate_set_later_is_checked_too(value):
    _, opt = model_with_grads(OPTIMIZERS["Adam"])
    with pytest.raises((ValueError, TypeError), match="Adam: lr must be a"):
        opt.lr = value
    assert opt.lr == 0.01


def test_adam_refuses_eps_zero():
    with raises(ValueError, "Adam: eps must be a finite number in (0, inf), got 0"):
        optim.Adam(nn.Linear(2, 2).parameters(), eps=0)


@pytest.mark.parametrize(
    "loss_fn, pred, target",
    [
        (nn.SoftmaxCrossEntropy(), np.array([[np.nan, 1.0]]), np.array([0])),
        (nn.MSELoss(), np.array([[np.inf]]), np.array([[0.0]])),
        (nn.MSELoss(), np.array([[0.0]]), np.array([[np.nan]])),
    ],
)
def test_losses_refuse_nan_and_inf(loss_fn, pred, target):
    with raises(ValueError, "found NaN or inf"):
        loss_fn(pred, target)
