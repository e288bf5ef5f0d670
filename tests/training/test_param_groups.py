"""Freezing, parameter groups, AdamW, StepLR, and the state of optimizers and schedulers:
against PyTorch where it has the same thing, and by their own rules."""

import itertools

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.nn import Parameter
from tests.helpers import lenet5, raises, randn, random_dy
from tests.training.test_optim import STEPS, gradient, make_params, run_minidl, run_torch


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: oracle test skipped")


def assert_same_params(ours, theirs):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


# --- AdamW and StepLR against PyTorch ----------------------------------------------------

ADAMW_CASES = [
    dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
    for lr, betas, eps, wd in itertools.product((1e-3, 0.05), ((0.9, 0.999), (0.0, 0.5)), (1e-8, 1e-3), (0.0, 0.1, 2.0))
]


@pytest.mark.parametrize("kwargs", ADAMW_CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_adamw_matches_torch(torch, kwargs):
    ours = run_minidl(lambda ps: optim.AdamW(ps, **kwargs))
    theirs = run_torch(torch, lambda ps: torch.optim.AdamW(ps, **kwargs))
    assert_same_params(ours, theirs)


def test_adamw_defaults_match_torch(torch):
    assert_same_params(run_minidl(optim.AdamW), run_torch(torch, torch.optim.AdamW))


def test_adamw_decay_is_decoupled():
    """With a zero gradient, Adam's L2 decay does nothing to p at step 1 beyond the
    normalised step (-lr sign(p)), AdamW's shrinks p by exactly (1 - lr wd)."""
    p = Parameter(np.array([2.0, -4.0]))
    optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)
    q = Parameter(np.array([2.0, -4.0]))
    optim.Adam([q], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(q.data, [2.0 - 0.1, -4.0 + 0.1], rtol=1e-7)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (2, 1.0)])
def test_steplr_matches_torch(torch, step_size, gamma):
    opt = optim.SGD([{"params": [Parameter(np.zeros(1))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1)
    sched = optim.StepLR(opt, step_size=step_size, gamma=gamma)
    groups = [
        {"params": [torch.zeros(1, requires_grad=True)]},
        {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.3},
    ]
    t_opt = torch.optim.SGD(groups, lr=0.1)
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=step_size, gamma=gamma)
    for t in range(1, 9):
        t_opt.step()
        sched.step()
        t_sched.step()
        np.testing.assert_allclose(sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose(
            sched.get_last_lr(), [0.1 * gamma ** (t // step_size), 0.3 * gamma ** (t // step_size)]
        )


# --- parameter groups ---------------------------------------------------------------------

GROUPED = {
    "sgd": lambda lib, ps: lib.SGD(
        [{"params": ps[:1], "lr": 0.01, "momentum": 0.5}, {"params": ps[1:], "weight_decay": 0.1}],
        lr=0.1,
        momentum=0.9,
    ),
    "adam": lambda lib, ps: lib.Adam(
        [{"params": ps[2:], "lr": 0.02, "betas": (0.5, 0.9)}, {"params": ps[:2]}], lr=1e-3
    ),
    "adamw": lambda lib, ps: lib.AdamW([{"params": ps[1:2], "weight_decay": 0.5}, {"params": [ps[0], ps[2]]}], lr=0.05),
}


@pytest.mark.parametrize("name", GROUPED)
def test_parameter_groups_match_torch(torch, name):
    ours = run_minidl(lambda ps: GROUPED[name](optim, ps))
    theirs = run_torch(torch, lambda ps: GROUPED[name](torch.optim, ps))
    assert_same_params(ours, theirs)


@pytest.mark.parametrize("name", GROUPED)
def test_freezing_and_unfreezing_match_torch(torch, name):
    """Parameter 1 frozen for steps 1-3 and parameter 2 from step 4 on: PyTorch skips a
    parameter without a gradient (its momentum and Adam's per-parameter step count stay),
    and so does minidl for one with requires_grad False."""

    def frozen(t, i):
        return (i == 1 and 1 <= t <= 3) or (i == 2 and t >= 4)

    ours = run_minidl(lambda ps: GROUPED[name](optim, ps), frozen)
    theirs = run_torch(torch, lambda ps: GROUPED[name](torch.optim, ps), frozen)
    assert_same_params(ours, theirs)


def test_each_group_steps_with_its_own_learning_rate():
    """Plain SGD: each group's step is exactly its lr times the gradient."""
    a, b = Parameter(np.zeros(3)), Parameter(np.zeros(2))
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.01)
    a.grad[...], b.grad[...] = 1.0, 1.0
    opt.step()
    np.testing.assert_array_equal(a.data, -0.5)
    np.testing.assert_array_equal(b.data, -0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01] and opt.params == [a, b]
    with raises(AttributeError, "different learning rates [0.01, 0.5]; read opt.param_groups[k]['lr']"):
        _ = opt.lr
    opt.lr = 0.2  # sets every group
    assert opt.lr == 0.2


def test_add_param_group_fills_the_defaults():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = optim.Adam([a], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1] == {"params": [b], "lr": 0.5, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0.0}
    assert opt.params == [a, b] and len(opt.state) == 2


@pytest.mark.parametrize(
    "groups, error, message",
    [
        (
            lambda a, b: [{"params": [a], "momentum": 0.9, "lr": 0.1}, {"params": [b], "betas": (0.9, 0.9)}],
            ValueError,
            "SGD: parameter group 1 has unknown keys ['betas']",
        ),
        (
            lambda a, b: [{"params": [a]}, {"params": [a, b]}],
            ValueError,
            "appears more than once in the parameter list or in two groups",
        ),
        (
            lambda a, b: [{"params": [a]}, {"lr": 0.1}],
            TypeError,
            "a parameter group must be a dict with a 'params' entry",
        ),
        (
            lambda a, b: [{"params": [a], "lr": -1.0}],
            ValueError,
            "SGD: lr must be a finite number in [0, inf), got -1.0",
        ),
        (lambda a, b: [{"params": [a, np.zeros(1)]}], TypeError, "parameter 1 of group 0 is a ndarray"),
        (lambda a, b: {"params": [a]}, TypeError, "got one dict; wrap it in a list"),
    ],
)
def test_bad_groups_are_refused(groups, error, message):
    with raises(error, message):
        optim.SGD(groups(Parameter(np.zeros(1)), Parameter(np.zeros(1))), lr=0.1)


def test_a_group_value_edited_to_nonsense_is_refused_at_the_next_step():
    p = Parameter(np.ones(2))
    opt = optim.Adam([{"params": [p]}])
    opt.param_groups[0]["eps"] = 0.0
    p.grad[...] = 1.0
    with raises(ValueError, "Adam: eps must be a finite number in (0, inf), got 0.0 (in param_groups[0])"):
        opt.step()
    np.testing.assert_array_equal(p.data, 1.0)
    assert opt.state[0] == {}


# --- freezing a layer ----------------------------------------------------------------------


def test_a_frozen_layer_keeps_its_weights_bit_identical_and_still_passes_the_gradient_on():
    minidl.seed(0)
    model = lenet5().to(np.float64)
    x, dy = randn(4, 1, 28, 28, seed=1), random_dy((4, 10), seed=2)
    model(x)
    dx_trainable = model.backward(dy)
    model.zero_grad()
    model[0].requires_grad_(False)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(x)
        dx = model.backward(dy)
        opt.step()
    after = model.state_dict()
    for key in ("0.weight", "0.bias"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        assert not model[0].weight.grad.any() and not model[0].bias.grad.any()
    assert not np.array_equal(after["9.weight"], before["9.weight"])
    assert dx.shape == dx_trainable.shape and np.abs(dx).max() > 0  # the input's gradient still flows
    assert opt.state[0] == {} and opt.state[1] == {} and opt.state[2]["step"] == 3


def test_the_gradient_below_a_frozen_layer_is_the_same_as_without_freezing():
    minidl.seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    model.to(np.float64)
    x, dy = randn(6, 5), random_dy((6, 3))
    model(x)
    model.backward(dy)
    grad_below = model[0].weight.grad.copy()
    model.zero_grad()
    model[2].requires_grad_(False)
    model(x)
    model.backward(dy)
    np.testing.assert_array_equal(model[0].weight.grad, grad_below)
    assert not model[2].weight.grad.any()


def test_requires_grad_of_a_sub_network_only():
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), nn.Linear(3, 2))
    assert model[0].requires_grad_(False) is model[0]
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    assert "requires_grad=False" in repr(Parameter(np.zeros(1), requires_grad=False))
    with raises(TypeError, "Parameter.requires_grad must be True or False, got 1"):
        model[1].weight.requires_grad = 1
    with raises(TypeError, "Sequential.requires_grad_: expected True or False, got 'no'"):
        model.requires_grad_("no")


# --- state dicts ----------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD([{"params": ps[:1], "lr": 0.03}, {"params": ps[1:]}], lr=0.1, momentum=0.9),
    "adam": lambda ps: optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.01}], lr=0.05),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.3),
}


def run_steps(params, opt, steps):
    for t in steps:
        opt.zero_grad()
        for i, p in enumerate(params):
            p.requires_grad = not (i == 1 and t < STEPS // 2)  # no state before the resume
            p.grad += gradient(t, i, p.data)
        opt.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_dict_resumes_bit_identically(name):
    """STEPS steps in one go, or half of them, then state_dict into a fresh optimizer (of
    fresh parameters holding the same values) and the rest: the same bits."""
    params = make_params()
    run_steps(params, OPTIMIZERS[name](params), range(STEPS))
    first = make_params()
    opt = OPTIMIZERS[name](first)
    run_steps(first, opt, range(STEPS // 2))
    state = opt.state_dict()
    assert "state.1.exp_avg" not in state and "state.1.momentum_buffer" not in state  # frozen so far
    second = make_params()
    for p, q in zip(second, first):
        p.data = q.data.copy()
    opt2 = OPTIMIZERS[name](second).load_state_dict(state)
    run_steps(second, opt2, range(STEPS // 2, STEPS))
    for p, q in zip(params, second):
        np.testing.assert_array_equal(p.data, q.data)


def test_optimizer_state_dict_refuses_other_groups_and_partial_state():
    ps = make_params()
    opt = OPTIMIZERS["adam"](ps)
    run_steps(ps, opt, range(3))
    state = opt.state_dict()
    other = optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}])
    with raises(ValueError, "'param_groups.0.params' is [0, 1], this optimizer's group 0 holds parameters [0]"):
        other.load_state_dict(state)
    with raises(KeyError, "missing keys [], unexpected keys ['param_groups.1.lr'"):
        optim.Adam(ps).load_state_dict(state)
    partial = {k: v for k, v in state.items() if k != "state.2.exp_avg"}
    with raises(KeyError, "the state of params[2] has ['exp_avg_sq', 'step']"):
        OPTIMIZERS["adam"](ps).load_state_dict(partial)
    bad_step = {**state, "state.0.step": np.array(2.5)}
    with raises(ValueError, "'state.0.step' must be a whole number, got 2.5"):
        OPTIMIZERS["adam"](ps).load_state_dict(bad_step)


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: optim.StepLR(opt, step_size=2, gamma=0.5),
        lambda opt: optim.CosineAnnealingLR(opt, T_max=5, eta_min=1e-4),
    ],
    ids=["steplr", "cosine"],
)
def test_scheduler_state_dict_resumes_the_schedule(make):
    def groups():
        return optim.SGD(
            [{"params": [Parameter(np.zeros(1))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1
        )

    opt = groups()
    sched = make(opt)
    lrs = []
    for _ in range(7):
        sched.step()
        lrs.append(sched.get_last_lr())
    opt2 = groups()
    sched2 = make(opt2)
    for _ in range(3):
        sched2.step()
    state = sched2.state_dict()
    opt3 = groups()
    opt3.load_state_dict(opt2.state_dict())
    sched3 = make(opt3).load_state_dict(state)
    assert sched3.get_last_lr() == lrs[2]
    for t in range(3, 7):
        sched3.step()
        assert sched3.get_last_lr() == lrs[t]


def test_scheduler_state_dict_is_checked():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    sched = optim.StepLR(opt, step_size=2)
    state = sched.state_dict()
    with raises(
        KeyError,
        "CosineAnnealingLR.load_state_dict: expected the keys ['T_max', 'base_lrs', 'eta_min', 't'], got ['base_lrs', 'gamma'",
    ):
        optim.CosineAnnealingLR(opt, T_max=3).load_state_dict(state)
    with raises(ValueError, "'step_size' must be a whole number, got 1.5"):
        sched.load_state_dict({**state, "step_size": np.array(1.5)})
    with raises(ValueError, "'base_lrs' has shape (2,), expected (1,)"):
        sched.load_state_dict({**state, "base_lrs": np.array([0.1, 0.2])})
    with raises(ValueError, "StepLR: gamma must be a finite number in [0, inf), got -1.0"):
        optim.StepLR(opt, step_size=2, gamma=-1.0)
    with raises(ValueError, "StepLR: step_size must be at least 1, got 0"):
        optim.StepLR(opt, step_size=0)
    assert sched.t == 0 and sched.step_size == 2
