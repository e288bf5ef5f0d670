"""SGD and Adam: update for update equal to torch.optim (float64), in place, dtype-preserving,
and clear errors for bad hyper-parameters.

The PyTorch oracle tests take torch through the ``torch`` fixture (skipped without it), so
the tests that need no PyTorch still run where it is not installed."""

import itertools

import numpy as np
import pytest

from minidl import optim
from minidl.nn import Parameter

SHAPES = [(3, 4), (4,), (2, 1, 3, 3)]
STEPS = 6


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in SHAPES]


def gradient(t, i, p_data):
    """The gradient fed at step t to parameter i: a quadratic's pull towards zero (so it
    depends on where the parameter is) plus fixed noise; some entries exactly zero."""
    noise = np.random.default_rng(100 * t + i).standard_normal(p_data.shape)
    g = 0.7 * p_data + noise
    g.reshape(-1)[::3] = 0.0  # Adam must handle zero gradients (v = 0, division by eps)
    return g


def never(t, i):
    return False


def run_minidl(make_opt, frozen=never):
    """STEPS steps of ``make_opt(params)``; parameter i is frozen at step t when ``frozen(t, i)``."""
    params = make_params()
    opt = make_opt(params)
    for t in range(STEPS):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.requires_grad = not frozen(t, i)
            p.grad += gradient(t, i, p.data)  # the optimizer skips a frozen parameter, whatever its grad
        opt.step()
    return [p.data for p in params]


def run_torch(torch, make_opt, frozen=never):
    """The same steps in PyTorch, where a frozen parameter has no gradient (None)."""
    params = [torch.nn.Parameter(torch.tensor(p.data)) for p in make_params()]
    opt = make_opt(params)
    for t in range(STEPS):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = None if frozen(t, i) else torch.tensor(gradient(t, i, p.detach().numpy()))
        opt.step()
    return [p.detach().numpy() for p in params]


SGD_CASES = [
    dict(lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    for lr, momentum, wd, nesterov in itertools.product((0.1, 0.03), (0.0, 0.5, 0.9), (0.0, 0.01), (False, True))
    if not (nesterov and momentum == 0)
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_torch(torch, kwargs):
    ours = run_minidl(lambda ps: optim.SGD(ps, **kwargs))
    theirs = run_torch(torch, lambda ps: torch.optim.SGD(ps, **kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


ADAM_CASES = [
    dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
    for lr, betas, eps, wd in itertools.product(
        (1e-3, 0.05), ((0.9, 0.999), (0.0, 0.5), (0.8, 0.0)), (1e-8, 1e-3), (0.0, 0.1)
    )
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_adam_matches_torch(torch, kwargs):
    ours = run_minidl(lambda ps: optim.Adam(ps, **kwargs))
    theirs = run_torch(torch, lambda ps: torch.optim.Adam(ps, **kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


def test_adam_defaults_match_torch(torch):
    ours = run_minidl(lambda ps: optim.Adam(ps))
    theirs = run_torch(torch, lambda ps: torch.optim.Adam(ps))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


def test_lr_change_between_steps_matches_torch(torch):
    """Hyper-parameters are read at every step, as with a PyTorch param_group."""
    ours_params = make_params()
    ours = optim.SGD(ours_params, lr=0.1, momentum=0.9)
    theirs_params = [torch.nn.Parameter(torch.tensor(p.data)) for p in make_params()]
    theirs = torch.optim.SGD(theirs_params, lr=0.1, momentum=0.9)
    for t, lr in enumerate((0.1, 0.05, 0.01)):
        ours.lr = lr
        theirs.param_groups[0]["lr"] = lr
        for i, (p, q) in enumerate(zip(ours_params, theirs_params)):
            p.grad[...] = gradient(t, i, p.data)
            q.grad = torch.tensor(gradient(t, i, q.detach().numpy()))
        ours.step()
        theirs.step()
    for p, q in zip(ours_params, theirs_params):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-7, atol=1e-12)


# --- without PyTorch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=0.1),
    ],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_minimises_a_quadratic(make_opt):
    """f(w) = 1/2 (w - c)^T A (w - c) with A positive definite: w must reach c."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    a = q @ np.diag([0.5, 1.0, 2.0, 3.0, 4.0]) @ q.T
    c = rng.standard_normal(5)
    w = Parameter(np.zeros(5))
    opt = make_opt([w])
    for _ in range(500):
        opt.zero_grad()
        w.grad += a @ (w.data - c)
        opt.step()
    np.testing.assert_allclose(w.data, c, atol=1e-3)


def test_plain_sgd_step_by_hand():
    p = Parameter(np.array([1.0, -2.0]))
    p.grad[...] = [0.5, 0.25]
    optim.SGD([p], lr=0.1, weight_decay=0.2).step()
    # g = grad + 0.2 p = [0.7, -0.15];  p - 0.1 g
    np.testing.assert_allclose(p.data, [0.93, -1.985], rtol=1e-12)


def test_momentum_buffer_starts_at_first_gradient():
    p = Parameter(np.zeros(2))
    opt = optim.SGD([p], lr=1.0, momentum=0.9)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [1.0, 2.0])
    np.testing.assert_allclose(p.data, [-1.0, -2.0])
    opt.step()  # same gradient: buf = 0.9 * buf + g = 1.9 g
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [1.9, 3.8])
    np.testing.assert_allclose(p.data, [-2.9, -5.8])


def test_adam_first_step_moves_every_coordinate_by_lr():
    """With the bias corrections, step 1 is lr * g / (|g| + eps): lr * sign(g)."""
    p = Parameter(np.zeros(3))
    p.grad[...] = [1e-3, -5.0, 200.0]
    optim.Adam([p], lr=0.01, eps=1e-300).step()  # eps must be > 0; 1e-300 is far below |g|
    np.testing.assert_allclose(p.data, [-0.01, 0.01, -0.01], rtol=1e-12)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
        lambda ps: optim.Adam(ps, weight_decay=0.1),
    ],
    ids=["sgd", "adam"],
)
def test_updates_in_place_and_keeps_float32(make_opt):
    params = make_params(np.float32)
    arrays = [p.data for p in params]
    before = [a.copy() for a in arrays]
    opt = make_opt(params)
    for t in range(3):
        for i, p in enumerate(params):
            p.grad[...] = gradient(t, i, p.data)
        opt.step()
    for p, array, old in zip(params, arrays, before):
        assert p.data is array  # the same array object: layers and views see the update
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert not np.array_equal(array, old)
    states = [s for per_param in opt.state for s in per_param.values() if isinstance(s, np.ndarray)]
    assert states and all(s.dtype == np.float32 for s in states)


def test_state_follows_a_dtype_change():
    """model.to(np.float64) after the optimiser was made: the state is converted."""
    p = Parameter(np.ones(3, dtype=np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    p.data = p.data.astype(np.float64)
    p.grad[...] = 1.0
    opt.step()
    assert p.data.dtype == np.float64
    assert opt.state[0]["exp_avg"].dtype == np.float64 and opt.state[0]["exp_avg_sq"].dtype == np.float64


def test_changed_shape_raises():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    p.data = np.ones(4)
    with pytest.raises(ValueError, match=r"SGD: params\[0\] changed shape from \(3,\) to \(4,\)"):
        opt.step()


def test_zero_grad_clears_every_gradient():
    params = make_params()
    for p in params:
        p.grad += 1.0
    optim.SGD(params, lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in params)


def test_accepts_a_generator():
    params = make_params()
    opt = optim.Adam(p for p in params)
    assert opt.params == params


def test_repr_names_the_hyper_parameters():
    assert "momentum=0.9" in repr(optim.SGD(make_params(), lr=0.1, momentum=0.9))
    assert "lr=0.001" in repr(optim.Adam(make_params()))


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_opt, error, message",
    [
        (lambda ps: optim.SGD(ps, lr=0.0), ValueError, r"SGD: lr must be a finite number in \(0, inf\), got 0.0"),
        (lambda ps: optim.SGD(ps, lr=-0.1), ValueError, r"SGD: lr must be a finite number in \(0, inf\), got -0.1"),
        (lambda ps: optim.SGD(ps, lr="0.1"), TypeError, r"SGD: lr must be a real number, got str"),
        (
            lambda ps: optim.SGD(ps, lr=float("nan")),
            ValueError,
            r"SGD: lr must be a finite number in \(0, inf\), got nan",
        ),
        (
            lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5),
            ValueError,
            r"SGD: momentum must be a finite number in \[0, inf\)",
        ),
        (
            lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1),
            ValueError,
            r"SGD: weight_decay must be a finite number in \[0, inf\)",
        ),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), ValueError, r"SGD: nesterov=True needs a momentum > 0"),
        (lambda ps: optim.Adam(ps, lr=0), ValueError, r"Adam: lr must be a finite number in \(0, inf\), got 0"),
        (
            lambda ps: optim.Adam(ps, betas=(1.0, 0.999)),
            ValueError,
            r"Adam: beta1 must be a finite number in \[0, 1\), got 1.0",
        ),
        (
            lambda ps: optim.Adam(ps, betas=(0.9, 1.5)),
            ValueError,
            r"Adam: beta2 must be a finite number in \[0, 1\), got 1.5",
        ),
        (
            lambda ps: optim.Adam(ps, betas=(-0.1, 0.9)),
            ValueError,
            r"Adam: beta1 must be a finite number in \[0, 1\), got -0.1",
        ),
        (lambda ps: optim.Adam(ps, betas=0.9), TypeError, r"Adam: betas must be a pair"),
        (lambda ps: optim.Adam(ps, betas=(0.9, None)), TypeError, r"Adam: beta2 must be a real number, got NoneType"),
        (lambda ps: optim.Adam(ps, eps=-1e-8), ValueError, r"Adam: eps must be a finite number in \(0, inf\)"),
        (
            lambda ps: optim.Adam(ps, weight_decay=-0.1),
            ValueError,
            r"Adam: weight_decay must be a finite number in \[0, inf\)",
        ),
    ],
)
def test_bad_hyper_parameters(make_opt, error, message):
    with pytest.raises(error, match=message):
        make_opt(make_params())


@pytest.mark.parametrize(
    "params, error, message",
    [
        ([], ValueError, r"SGD: got an empty parameter list"),
        ([np.zeros(3)], TypeError, r"SGD: parameter 0 of group 0 is a ndarray, not a minidl Parameter"),
        (Parameter(np.zeros(3)), TypeError, r"SGD: expected an iterable of Parameters .* got one Parameter"),
        (3, TypeError, r"SGD: expected an iterable of Parameters .* got int"),
    ],
)
def test_bad_parameter_lists(params, error, message):
    with pytest.raises(error, match=message):
        optim.SGD(params, lr=0.1)


def test_duplicate_parameter_raises():
    p = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match=r"Adam: a Parameter appears more than once"):
        optim.Adam([p, p])


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError, match="Optimizer does not implement check_hyper"):
        optim.Optimizer(make_params(), {})

    class NoUpdate(optim.Optimizer):
        def check_hyper(self, values):
            return {"lr": values["lr"]}

    with pytest.raises(NotImplementedError, match="NoUpdate does not implement prepare"):
        NoUpdate(make_params(), {"lr": 0.1}).step()


def test_cosine_annealing_matches_formula_and_torch_schedule():
    p = Parameter(np.zeros(2, dtype=np.float64))
    opt = optim.SGD([p], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.lr)
    expected = [0.01 + 0.09 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(1, 6)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert lrs[3] == pytest.approx(0.01)  # eta_min reached at T_max


def test_cosine_annealing_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: oracle test skipped")
    opt = optim.Adam([Parameter(np.zeros(1))], lr=2e-3)
    sched = optim.CosineAnnealingLR(opt, T_max=7, eta_min=1e-5)
    t_opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-3)
    t_sched = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=7, eta_min=1e-5)
    for _ in range(7):
        t_opt.step()
        sched.step()
        t_sched.step()
        assert opt.lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)


def test_cosine_annealing_rejects_bad_arguments():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive int"):
        optim.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(TypeError, match="expected a minidl optimizer, got object"):
        optim.CosineAnnealingLR(object(), T_max=3)
