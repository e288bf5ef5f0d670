"""Optimisers: how the gradients in ``Parameter.grad`` become a change of ``Parameter.data``;
and learning-rate schedules.

SGD, Adam and AdamW follow PyTorch's ``torch.optim`` update for update, so a model trained
here and one trained with PyTorch from the same weights take the same steps.

SGD with momentum mu, weight decay lambda, learning rate lr; at step t, for each parameter p
with gradient grad:

    g   = grad + lambda * p                     (weight decay = L2 penalty lambda/2 ||p||^2)
    buf = g                       at t = 1      (the velocity starts at the first gradient)
    buf = mu * buf + g            at t > 1
    g   = g + mu * buf            (nesterov: look ahead along the velocity)
    g   = buf                     (plain momentum)
    p   = p - lr * g

With mu = 0 there is no buffer and this is plain gradient descent, p = p - lr * g.

Adam (Kingma & Ba, 2015) keeps running means of the gradient and of its square; with
betas (beta1, beta2) and eps:

    g     = grad + lambda * p                   (L2 weight decay, added to the gradient)
    m     = beta1 * m + (1 - beta1) * g         (first moment, m starts at 0)
    v     = beta2 * v + (1 - beta2) * g * g     (second moment, v starts at 0)
    m_hat = m / (1 - beta1^t)                   (bias corrections: m and v start at 0,
    v_hat = v / (1 - beta2^t)                    so early averages are too small)
    p     = p - lr * m_hat / (sqrt(v_hat) + eps)

AdamW (Loshchilov & Hutter, 2019) decouples the weight decay from the gradient: with the
L2 penalty inside g, Adam divides it by sqrt(v_hat) like any gradient, so weights with
large gradients are barely decayed. AdamW shrinks the weights directly instead,

    p     = p * (1 - lr * lambda)               (then Adam's update with g = grad)

Parameter groups. Like PyTorch, an optimizer takes either parameters or a list of groups,
each a dict with its own hyper-parameters (the optimizer's arguments are the defaults):

    opt = optim.Adam([{"params": backbone.parameters(), "lr": 1e-4},   # fine-tune gently
                      {"params": head.parameters()}],                  # lr=1e-3 from below
                     lr=1e-3)
    opt.param_groups[0]["lr"]          # each group's numbers, in a dict

A parameter with ``requires_grad = False`` (frozen: ``backbone.requires_grad_(False)``)
is skipped: it gets no update, no weight decay, no momentum, and its step count stays.

Every update writes into ``p.data`` in place (the layers read ``.data`` at each call, and any
other reference to the array sees the new values), and the state arrays live on the
parameter's device with its shape and dtype: PyTorch's names, ``opt.state[i]`` for
``opt.params[i]`` (``"momentum_buffer"``; ``"step"``, ``"exp_avg"``, ``"exp_avg_sq"``).
The updates themselves are ops (``minidl/ops/sgd.py``, ``minidl/ops/adam.py`` and their
CUDA twins), so a model on the GPU is updated on the GPU. ``model.to(np.float64)`` or
``model.to("cuda")`` after the optimiser was made is fine: the state follows the
parameter's new dtype and device at the next step.

Usage, as in PyTorch:

    opt = optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()                    # grads start from zero ...
    model.backward(loss_fn.backward())   # ... backward adds into them ...
    opt.step()                         # ... and the step uses them
"""

import math

import numpy as np

from . import dispatch
from .device import astype, device_of, to_device, to_host, zeros
from .nn.checks import integer, loaded_number, real_array, real_number
from .nn.module import Parameter


class Optimizer:
    """Base class: the parameter groups, the per-parameter state, the checks, the state dict.

    ``params`` is an iterable of ``Parameter`` (usually ``model.parameters()``) or a list of
    groups ``{"params": [...], "lr": ..., ...}``; ``defaults`` holds every hyper-parameter's
    value for a group that does not set it. ``param_groups`` is the list of groups (dicts;
    ``group["params"]`` a list), ``params`` every parameter in group order, ``state[i]``
    the dict of state arrays of ``params[i]`` (empty until its first step).

    ``opt.lr = 1e-4`` sets the learning rate of every group (checked like the
    constructor's); reading ``opt.lr`` works while all groups share one. A subclass
    implements ``check_hyper(values)`` (the hyper-parameters' ranges), ``prepare(i, group)``
    (make or convert ``params[i]``'s state) and ``update(i, p, group, ready)`` (one
    parameter's step; ``ready`` is what ``prepare`` returned).

    A step never half-happens: every group's hyper-parameters and every gradient are
    checked first (finite, unless the optimizer was made with ``check_finite=False``) and
    every state array prepared, and only then is any parameter updated. A NaN or inf
    gradient raises ``FloatingPointError`` naming the parameter by its state-dict key, with
    every parameter and every moment as it was. ``state_dict()`` / ``load_state_dict()``
    save and restore the groups' hyper-parameters and the per-parameter state, so training
    can resume.
    """

    state_names = ()  # the keys of a stepped parameter's state dict

    def __init__(self, params, defaults, check_finite=True):
        name = type(self).__name__
        if isinstance(params, (Parameter, dict)):
            raise TypeError(
                f"{name}: expected an iterable of Parameters (e.g. model.parameters()) or a list of parameter "
                f"groups, got one {type(params).__name__}; wrap it in a list"
            )
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"{name}: expected an iterable of Parameters (e.g. model.parameters()), got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list (does the model have any parameters?)")
        groups = params if all(isinstance(g, dict) for g in params) else [{"params": params}]
        self.defaults = self.check_hyper(defaults)
        self.check_finite = bool(check_finite)
        self.param_groups, self.params, self.state = [], [], []
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group ``{"params": [...], hyper-parameter: value, ...}``; the hyper-parameters
        it leaves out come from the optimizer's defaults. (PyTorch's method; also how the
        constructor reads its argument.)"""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(
                f"{name}: a parameter group must be a dict with a 'params' entry, got {type(group).__name__}"
            )
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(
                f"{name}: parameter group {len(self.param_groups)} has unknown keys {unknown}; "
                f"known: {sorted(self.defaults)}"
            )
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{name}: parameter {i} of group {len(self.param_groups)} is a {type(p).__name__}, "
                    f"not a minidl Parameter"
                )
        ids = [id(p) for p in self.params + params]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"{name}: a Parameter appears more than once in the parameter list or in two groups "
                f"(it would be updated twice per step)"
            )
        hyper = self.check_hyper({**self.defaults, **{k: v for k, v in group.items() if k != "params"}})
        self.param_groups.append({"params": params, **hyper})
        self.params.extend(params)
        self.state.extend({} for _ in params)

    @property
    def lr(self):
        """The learning rate, while every group has the same (else read ``param_groups``)."""
        lrs = {group["lr"] for group in self.param_groups}
        if len(lrs) > 1:
            raise AttributeError(
                f"{type(self).__name__}: the parameter groups have different learning rates {sorted(lrs)}; "
                f"read opt.param_groups[k]['lr']"
            )
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        value = real_number(type(self).__name__, "lr", value, 0.0)
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self):
        """Set every parameter's ``.grad`` to zero (backward adds into it)."""
        for p in self.params:
            p.zero_grad()

    def _trainable(self):
        """``(i, p, group)`` for every parameter that takes part in a step: not frozen."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.requires_grad:
                    yield i, p, group
                i += 1

    def step(self):
        """One update of every trainable parameter (see the class docstrings)."""
        for k, group in enumerate(self.param_groups):  # a group's numbers may have been edited since
            try:
                self.check_hyper({key: value for key, value in group.items() if key != "params"})
            except (TypeError, ValueError) as err:
                raise type(err)(f"{err} (in param_groups[{k}])") from None
        todo = list(self._trainable())
        self._check_gradients(todo)
        prepared = [self.prepare(i, group) for i, _, group in todo]
        for (i, p, group), ready in zip(todo, prepared):
            self.update(i, p, group, ready)

    def _param_name(self, i):
        p = self.params[i]
        return repr(p.name) if p.name is not None else f"params[{i}]"

    def _check_gradients(self, todo):
        """Before any update: every gradient is finite (when ``check_finite``)."""
        if not self.check_finite:
            return
        for i, p, _ in todo:
            bad = dispatch.op("reduce", p.grad).count_nonfinite(p.grad)
            if bad:
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of {self._param_name(i)} (shape {tuple(p.shape)}) holds "
                    f"{bad} NaN or infinite values of {p.size}; no parameter was updated and the optimizer's state "
                    f"is unchanged (find where they were born with minidl.detect_anomaly(); a smaller learning rate "
                    f"often helps)"
                )

    def _state_like(self, i, key):
        """``state[i][key]`` matching ``params[i]``: zeros if there is none yet, converted if
        the parameter changed dtype or device since the last step."""
        p, state = self.params[i], self.state[i].get(key)
        if state is None:
            return zeros(p.shape, p.dtype, like=p.data)
        if tuple(state.shape) != tuple(p.shape):
            raise ValueError(
                f"{type(self).__name__}: {self._param_name(i)} changed shape from {tuple(state.shape)} to "
                f"{tuple(p.shape)} since the last step; make a new optimizer for the new parameters"
            )
        return astype(to_device(state, device_of(p.data)), p.dtype)

    def check_hyper(self, values):
        """``values`` (a value for every hyper-parameter) checked against their ranges, as
        the group stores them; raises before anything is set."""
        raise NotImplementedError(f"{type(self).__name__} does not implement check_hyper")

    def prepare(self, i, group):
        """Make (or convert) ``state[i]`` for this step, before any parameter changes;
        return what ``update`` needs to know of it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement prepare")

    def update(self, i, p, group, ready):
        """Update ``p = params[i]`` with ``group``'s hyper-parameters."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update")

    # --- state ----------------------------------------------------------------------------
    def state_dict(self):
        """Host copies, flat (a checkpoint stores arrays):

        "param_groups.<k>.<name>"   group k's hyper-parameter (0-d, or (2,) for betas)
        "param_groups.<k>.params"   the indices i of group k's parameters
        "state.<i>.<name>"          params[i]'s state ("state.0.exp_avg", "state.3.step")
        """
        state, first = {}, 0
        for k, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    state[f"param_groups.{k}.{key}"] = np.array(value, dtype=np.float64)
            state[f"param_groups.{k}.params"] = np.arange(first, first + len(group["params"]), dtype=np.int64)
            first += len(group["params"])
        for i, per_param in enumerate(self.state):
            for key, value in per_param.items():
                state[f"state.{i}.{key}"] = np.array(to_host(value) if hasattr(value, "shape") else value, copy=True)
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s values; all are checked before any is set."""
        self.checked_state(state)()
        return self

    def checked_state(self, state):
        """Check ``state`` against this optimizer without changing it; return a function
        that applies it. Keys (the same groups of the same parameters), shapes (each
        parameter's), finite real values and the hyper-parameters' ranges are checked, each
        error naming its key."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{name}: expected a dict (from state_dict()), got {type(state).__name__}")
        expected = self.state_dict()
        group_keys = [key for key in expected if key.startswith("param_groups.")]
        state_keys = {f"state.{i}.{key}": (i, key) for i in range(len(self.params)) for key in self.state_names}
        missing = [key for key in group_keys if key not in state]
        unexpected = [key for key in state if key not in group_keys and key not in state_keys]
        if missing or unexpected:
            raise KeyError(
                f"{name}: missing keys {missing}, unexpected keys {unexpected} "
                f"(the state of another optimizer, or of other parameters or groups?)"
            )
        groups = []
        for k, group in enumerate(self.param_groups):
            indices = np.asarray(state[f"param_groups.{k}.params"])
            if indices.shape != expected[f"param_groups.{k}.params"].shape or not np.array_equal(
                indices, expected[f"param_groups.{k}.params"]
            ):
                raise ValueError(
                    f"{name}: 'param_groups.{k}.params' is {indices.tolist()}, this optimizer's group {k} holds "
                    f"parameters {expected[f'param_groups.{k}.params'].tolist()}"
                )
            values = {}
            for key in group:
                if key != "params":
                    entry = f"param_groups.{k}.{key}"
                    array = real_array(name, entry, state[entry], np.shape(expected[entry]))
                    values[key] = array.item() if array.ndim == 0 else tuple(array.tolist())
            try:
                groups.append(self.check_hyper(values))
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name}: param_groups.{k}: {err}") from None
        per_param = [{} for _ in self.params]
        for key, (i, state_name) in state_keys.items():
            if key in state:
                p = self.params[i]
                if state_name == "step":
                    per_param[i][state_name] = integer(name, repr(key), loaded_number(name, key, state[key], True), 1)
                else:
                    per_param[i][state_name] = to_device(
                        real_array(name, key, state[key], tuple(p.shape), p.dtype), p.device
                    )
        for i, entries in enumerate(per_param):
            if entries and set(entries) != set(self.state_names):
                raise KeyError(
                    f"{name}: the state of params[{i}] has {sorted(entries)}, a stepped parameter has "
                    f"{sorted(self.state_names)}"
                )

        def apply():
            for group, values in zip(self.param_groups, groups):
                group.update(values)
            self.state[:] = per_param

        return apply

    def __repr__(self):
        first = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in self.param_groups[0].items()
            if k != "params"
        )
        groups = "" if len(self.param_groups) == 1 else f" (group 0 of {len(self.param_groups)})"
        return f"{type(self).__name__}({first}{groups}, {len(self.params)} parameters)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    ``SGD(params, lr, momentum=0, weight_decay=0, nesterov=False, check_finite=True)``; for
    each parameter p:

        g   = grad + weight_decay * p
        buf = g                          on the first step, then
        buf = momentum * buf + g
        g   = g + momentum * buf         if nesterov, else  g = buf
        p   = p - lr * g

    (PyTorch's update with ``dampening=0``; with ``momentum=0`` simply ``p = p - lr * g``.)
    ``state[i]["momentum_buffer"]`` is the velocity ``buf`` of ``params[i]`` (absent before
    its first step, and always without momentum).
    """

    state_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False, check_finite=True):
        real_number("SGD", "lr", lr, 0.0, low_open=True)
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults, check_finite)

    def check_hyper(self, values):
        momentum = real_number("SGD", "momentum", values["momentum"], 0.0)
        nesterov = values["nesterov"]
        if nesterov not in (0, 1):
            raise ValueError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum == 0:
            raise ValueError(
                "SGD: nesterov=True needs a momentum > 0 (Nesterov momentum is a look-ahead along the velocity)"
            )
        return {
            "lr": real_number("SGD", "lr", values["lr"], 0.0),
            "momentum": momentum,
            "weight_decay": real_number("SGD", "weight_decay", values["weight_decay"], 0.0),
            "nesterov": bool(nesterov),
        }

    def prepare(self, i, group):
        """The velocity, when the group has momentum (zeros at the parameter's first step,
        where the op overwrites it with g); returns whether this is that first step."""
        if group["momentum"] == 0:
            return False
        first_step = "momentum_buffer" not in self.state[i]
        self.state[i]["momentum_buffer"] = self._state_like(i, "momentum_buffer")
        return first_step

    def update(self, i, p, group, first_step):
        buf = self.state[i]["momentum_buffer"] if group["momentum"] != 0 else None
        dispatch.op("sgd", p.data, p.grad, buf).step(
            p.data, p.grad, buf, group["lr"], group["momentum"], group["weight_decay"], group["nesterov"], first_step
        )


class Adam(Optimizer):
    """Adam: per-element step sizes from running moments of the gradient.

    ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, check_finite=True)``;
    at step t of each parameter p:

        g     = grad + weight_decay * p
        m     = beta1 * m + (1 - beta1) * g
        v     = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p     = p - lr * m_hat / (sqrt(v_hat) + eps)

    ``eps`` must be > 0: where a gradient has always been 0, m_hat = v_hat = 0 and the step
    is 0 / (0 + eps). ``weight_decay`` is PyTorch's ``Adam`` L2 penalty (added to the
    gradient, then scaled by the adaptive step), not AdamW's decoupled decay.
    ``state[i]`` holds ``"step"`` (t of ``params[i]``: a frozen parameter's t stays, as in
    PyTorch), ``"exp_avg"`` (m) and ``"exp_avg_sq"`` (v).
    """

    state_names = ("step", "exp_avg", "exp_avg_sq")
    decoupled = False  # AdamW: the weight decay shrinks p instead of joining the gradient

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, check_finite=True):
        real_number(type(self).__name__, "lr", lr, 0.0, low_open=True)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}, check_finite)

    def check_hyper(self, values):
        name = type(self).__name__
        try:
            beta1, beta2 = values["betas"]
        except (TypeError, ValueError):
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {values['betas']!r}") from None
        return {
            "lr": real_number(name, "lr", values["lr"], 0.0),
            "betas": tuple(
                real_number(name, f"beta{k}", b, 0.0, 1.0, high_open=True) for k, b in ((1, beta1), (2, beta2))
            ),
            "eps": real_number(name, "eps", values["eps"], 0.0, low_open=True),
            "weight_decay": real_number(name, "weight_decay", values["weight_decay"], 0.0),
        }

    def prepare(self, i, group):
        """The moments (zeros before the first step) on the parameter's device and dtype."""
        state = self.state[i]
        state["exp_avg"] = self._state_like(i, "exp_avg")
        state["exp_avg_sq"] = self._state_like(i, "exp_avg_sq")
        state.setdefault("step", 0)

    def update(self, i, p, group, ready):
        state = self.state[i]
        state["step"] += 1
        beta1, beta2 = group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        dispatch.op("adam", p.data, p.grad, m, v).step(
            p.data,
            p.grad,
            m,
            v,
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            state["step"],
            self.decoupled,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019; PyTorch's ``AdamW``).

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, check_finite=True)``;
    at step t of each parameter p:

        p     = p * (1 - lr * weight_decay)     the decay, on the weights themselves
        m     = beta1 * m + (1 - beta1) * grad
        v     = beta2 * v + (1 - beta2) * grad^2
        p     = p - lr * m_hat / (sqrt(v_hat) + eps)   (m_hat, v_hat as in Adam)

    With Adam's L2 penalty the decay is divided by sqrt(v_hat) like the gradient, so it
    hardly acts on the weights that move most; here every weight shrinks by the same factor.
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, check_finite=True):
        super().__init__(params, lr, betas, eps, weight_decay, check_finite)


class LRScheduler:
    """Base class of the learning-rate schedules: after ``t`` calls of ``step()`` (one per
    epoch), every parameter group's learning rate is ``lr_at(base_lr, t)``, where
    ``base_lr`` is the group's learning rate when the scheduler was made.

    ``state_dict()`` / ``load_state_dict()`` save and restore ``t``, the base learning rates
    and the schedule's own numbers (PyTorch's scheduler state, as flat arrays); the
    optimizer's state dict holds the current learning rates.
    """

    hyper_names = ()  # the schedule's own numbers, attributes of the same names

    def __init__(self, optimizer, **hyper):
        name = type(self).__name__
        if not isinstance(getattr(optimizer, "param_groups", None), list):
            raise TypeError(f"{name}: expected a minidl optimizer, got {type(optimizer).__name__}")
        for key, value in self.check_hyper(hyper).items():
            setattr(self, key, value)
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.t = 0

    def lr_at(self, base_lr, t):
        """The learning rate after ``t`` epochs of a group that started at ``base_lr``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement lr_at")

    def hyper(self):
        """The schedule's own numbers, ``{name: value}``."""
        return {key: getattr(self, key) for key in self.hyper_names}

    def check_hyper(self, values):
        """``values`` checked as the constructor checks them."""
        raise NotImplementedError(f"{type(self).__name__} does not implement check_hyper")

    def step(self):
        """Advance one epoch and set every group's lr for the next one."""
        self.t += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base_lr, self.t)

    def get_last_lr(self):
        """Every group's current learning rate (PyTorch's name)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """``{"t": 0-d, "base_lrs": (groups,), <hyper>: 0-d}``, host arrays."""
        state = {"t": np.array(self.t, dtype=np.int64), "base_lrs": np.array(self.base_lrs, dtype=np.float64)}
        state.update({key: np.array(value, dtype=np.float64) for key, value in self.hyper().items()})
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s values; all are checked before any is set."""
        self.checked_state(state)()
        return self

    def checked_state(self, state):
        """Check ``state`` without changing anything; return a function that applies it."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{name}: expected a dict (from state_dict()), got {type(state).__name__}")
        keys = ["t", "base_lrs", *self.hyper()]
        if sorted(state) != sorted(keys):
            raise KeyError(f"{name}: expected the keys {sorted(keys)}, got {sorted(state)} (another scheduler's?)")
        t = integer(name, "'t'", loaded_number(name, "t", state["t"], True), 0)
        base_lrs = real_array(name, "base_lrs", state["base_lrs"], (len(self.optimizer.param_groups),))
        for k, lr in enumerate(base_lrs):
            real_number(name, f"base_lrs[{k}]", lr, 0.0)
        hyper = self.check_hyper(
            {key: loaded_number(name, key, state[key], isinstance(value, int)) for key, value in self.hyper().items()}
        )

        def apply():
            self.t, self.base_lrs = t, base_lrs.tolist()
            for key, value in hyper.items():
                setattr(self, key, value)

        return apply

    def __repr__(self):
        hyper = ", ".join(f"{k}={v:g}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({hyper}, t={self.t})"


class CosineAnnealingLR(LRScheduler):
    """Cosine learning-rate schedule, PyTorch's ``CosineAnnealingLR`` (without restarts).

    After ``t`` calls of ``step()`` (one per epoch), each group's learning rate is

        lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2

    falling from the initial ``lr_0`` to ``eta_min`` at ``t = T_max`` (and rising again
    after, as in PyTorch). Large steps first, small steps to settle at the end.
    """

    hyper_names = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def check_hyper(self, values):
        T_max = values["T_max"]
        if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        return {"T_max": int(T_max), "eta_min": real_number("CosineAnnealingLR", "eta_min", values["eta_min"], 0.0)}

    def lr_at(self, base_lr, t):
        cosine = (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0
        return self.eta_min + (base_lr - self.eta_min) * cosine


class StepLR(LRScheduler):
    """Step decay, PyTorch's ``StepLR``: every ``step_size`` epochs the learning rate is
    multiplied by ``gamma``,

        lr_t = lr_0 * gamma ** (t // step_size)

    (``StepLR(opt, step_size=10, gamma=0.1)``: lr_0 for epochs 0-9, lr_0/10 for 10-19, ...).
    """

    hyper_names = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def check_hyper(self, values):
        return {
            "step_size": integer("StepLR", "step_size", values["step_size"], 1),
            "gamma": real_number("StepLR", "gamma", values["gamma"], 0.0),
        }

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)
