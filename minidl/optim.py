"""Optimisers: how the gradients in ``Parameter.grad`` become a change of ``Parameter.data``.

Both follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` update for update, so a
model trained here and one trained with PyTorch from the same weights take the same steps.

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

Every update writes into ``p.data`` in place (the layers read ``.data`` at each call, and any
other reference to the array sees the new values), and the state arrays (buf, m, v) have
the parameter's shape and dtype and live on its device. The updates themselves are ops
(``minidl/ops/sgd.py``, ``minidl/ops/adam.py`` and their CUDA twins), so a model on the GPU
is updated on the GPU. ``model.to(np.float64)`` or ``model.to("cuda")`` after the optimiser
was made is fine: the state follows the parameter's new dtype and device at the next step.

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
from .nn.checks import real_array, real_number
from .nn.module import Parameter


class Optimizer:
    """Base class: holds the list of Parameters to update and clears their gradients.

    ``params`` is any iterable of ``Parameter`` (usually ``model.parameters()``). Subclasses
    implement ``step()``. Hyper-parameters are plain attributes (``opt.lr = 1e-4`` changes
    the learning rate from the next step on; it is checked like the constructor's).

    A step never half-happens: every gradient is checked first (finite, unless the
    optimizer was made with ``check_finite=False``) and every state array prepared, and
    only then is any parameter updated. A NaN or inf gradient raises ``FloatingPointError``
    naming the parameter by its state-dict key, with every parameter and every moment as
    it was. ``state_dict()`` / ``load_state_dict()`` save and restore the hyper-parameters
    and the per-parameter state (momentum buffers, moments), so training can resume.
    """

    state_names = ()  # attributes holding one state array (or None) per parameter

    def __init__(self, params, check_finite=True):
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(
                f"{name}: expected an iterable of Parameters (e.g. model.parameters()), "
                f"got one Parameter; wrap it in a list"
            )
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"{name}: expected an iterable of Parameters (e.g. model.parameters()), got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list (does the model have any parameters?)")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a minidl Parameter")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(
                f"{name}: a Parameter appears more than once in the parameter list (it would be updated twice per step)"
            )
        self.params = params
        self.check_finite = bool(check_finite)

    @property
    def lr(self):
        """The learning rate: a finite number >= 0 (a schedule may bring it down to 0)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = real_number(type(self).__name__, "lr", value, 0.0)

    def zero_grad(self):
        """Set every parameter's ``.grad`` to zero (backward adds into it)."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        """Update every parameter's ``.data`` from its ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _param_name(self, i):
        p = self.params[i]
        return repr(p.name) if p.name is not None else f"params[{i}]"

    def _check_gradients(self):
        """Before any update: every gradient is finite (when ``check_finite``)."""
        if not self.check_finite:
            return
        for i, p in enumerate(self.params):
            bad = dispatch.op("reduce", p.grad).count_nonfinite(p.grad)
            if bad:
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of {self._param_name(i)} (shape {tuple(p.shape)}) holds "
                    f"{bad} NaN or infinite values of {p.size}; no parameter was updated and the optimizer's state "
                    f"is unchanged (find where they were born with minidl.detect_anomaly(); a smaller learning rate "
                    f"often helps)"
                )

    def _state_like(self, state, i):
        """A state array (momentum buffer, moment) matching ``params[i]``: zeros if there is
        none yet, converted if its data changed dtype or device since the last step."""
        p = self.params[i]
        if state is None:
            return zeros(p.shape, p.dtype, like=p.data)
        if tuple(state.shape) != tuple(p.shape):
            raise ValueError(
                f"{type(self).__name__}: {self._param_name(i)} changed shape from {tuple(state.shape)} to "
                f"{tuple(p.shape)} since the last step; make a new optimizer for the new parameters"
            )
        return astype(to_device(state, device_of(p.data)), p.dtype)

    # --- state ----------------------------------------------------------------------------
    def hyper(self):
        """The hyper-parameters and counters, ``{name: number}``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement hyper")

    def check_hyper(self, values):
        """``{attribute: value}`` to set from ``values`` (a number for every name of
        ``hyper()``), each checked against its range; raises before anything is set."""
        raise NotImplementedError(f"{type(self).__name__} does not implement check_hyper")

    def set_hyper(self, values):
        """Check ``values`` and set them all, or raise and set none."""
        for attr, value in self.check_hyper(values).items():
            setattr(self, attr, value)

    def state_dict(self):
        """Host copies: each hyper-parameter as a 0-d array (``"lr"``) and each state array
        as ``"<name>.<i>"`` for parameter i (``"m.0"``, ``"momentum_buffers.3"``)."""
        state = {key: np.array(value, dtype=np.float64) for key, value in self.hyper().items()}
        for attr in self.state_names:
            for i, a in enumerate(getattr(self, attr)):
                if a is not None:
                    state[f"{attr}.{i}"] = np.array(to_host(a), copy=True)
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s values; all are checked before any is set."""
        self.checked_state(state)()
        return self

    def checked_state(self, state):
        """Check ``state`` against this optimizer without changing it; return a function
        that applies it. Keys, shapes (each parameter's), finite real values and the
        hyper-parameters' ranges are checked, each error naming its key."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{name}: expected a dict (from state_dict()), got {type(state).__name__}")
        hyper_keys = list(self.hyper())
        array_keys = {f"{attr}.{i}": (attr, i) for attr in self.state_names for i in range(len(self.params))}
        missing = [k for k in hyper_keys if k not in state]
        unexpected = [k for k in state if k not in hyper_keys and k not in array_keys]
        if missing or unexpected:
            raise KeyError(
                f"{name}: missing keys {missing}, unexpected keys {unexpected} "
                f"(the state of another optimizer, or of other parameters?)"
            )
        values = {key: real_array(name, key, state[key], ()).item() for key in hyper_keys}
        arrays = {attr: [None] * len(self.params) for attr in self.state_names}
        for key, (attr, i) in array_keys.items():
            if key in state:
                p = self.params[i]
                arrays[attr][i] = to_device(real_array(name, key, state[key], tuple(p.shape), p.dtype), p.device)
        for attr, per_param in arrays.items():
            if any(a is None for a in per_param) and any(a is not None for a in per_param):
                raise KeyError(f"{name}: {attr} is given for some parameters and not for others")
        hyper = self.check_hyper(values)

        def apply():
            for attr, value in {**hyper, **arrays}.items():
                setattr(self, attr, value)

        return apply


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
    ``momentum_buffers[i]`` is the velocity ``buf`` of ``params[i]`` (None before step 1).
    """

    state_names = ("momentum_buffers",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False, check_finite=True):
        super().__init__(params, check_finite)
        real_number("SGD", "lr", lr, 0.0, low_open=True)
        self.set_hyper({"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov})
        self.momentum_buffers = [None] * len(self.params)

    def hyper(self):
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": float(self.nesterov),
        }

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

    def step(self):
        """One update of every parameter (see the class docstring)."""
        self._check_gradients()
        first_step = [buf is None for buf in self.momentum_buffers]
        if self.momentum != 0:  # zeros at step 1 (overwritten by g there), prepared before any update
            self.momentum_buffers = [self._state_like(buf, i) for i, buf in enumerate(self.momentum_buffers)]
        for i, p in enumerate(self.params):
            buf = self.momentum_buffers[i] if self.momentum != 0 else None
            dispatch.op("sgd", p.data, p.grad, buf).step(
                p.data, p.grad, buf, self.lr, self.momentum, self.weight_decay, self.nesterov, first_step[i]
            )

    def __repr__(self):
        return (
            f"SGD(lr={self.lr:g}, momentum={self.momentum:g}, weight_decay={self.weight_decay:g}, "
            f"nesterov={self.nesterov}, {len(self.params)} parameters)"
        )


class Adam(Optimizer):
    """Adam: per-element step sizes from running moments of the gradient.

    ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, check_finite=True)``;
    at step t, for each parameter p:

        g     = grad + weight_decay * p
        m     = beta1 * m + (1 - beta1) * g
        v     = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p     = p - lr * m_hat / (sqrt(v_hat) + eps)

    ``eps`` must be > 0: where a gradient has always been 0, m_hat = v_hat = 0 and the step
    is 0 / (0 + eps). ``weight_decay`` is PyTorch's ``Adam`` L2 penalty (added to the
    gradient, then scaled by the adaptive step), not AdamW's decoupled decay. ``m[i]``,
    ``v[i]`` are the moments of ``params[i]``; ``t`` counts the steps taken.
    """

    state_names = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, check_finite=True):
        super().__init__(params, check_finite)
        real_number("Adam", "lr", lr, 0.0, low_open=True)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.set_hyper({"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay, "t": 0})
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)

    def hyper(self):
        beta1, beta2 = self.betas
        return {
            "lr": self.lr,
            "beta1": beta1,
            "beta2": beta2,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "t": self.t,
        }

    def check_hyper(self, values):
        t = real_number("Adam", "t (the steps taken)", values["t"], 0.0)
        if t != int(t):
            raise ValueError(f"Adam: t (the steps taken) must be a whole number, got {t!r}")
        return {
            "lr": real_number("Adam", "lr", values["lr"], 0.0),
            "betas": tuple(
                real_number("Adam", f"beta{k}", values[f"beta{k}"], 0.0, 1.0, high_open=True) for k in (1, 2)
            ),
            "eps": real_number("Adam", "eps", values["eps"], 0.0, low_open=True),
            "weight_decay": real_number("Adam", "weight_decay", values["weight_decay"], 0.0),
            "t": int(t),
        }

    def step(self):
        """One update of every parameter (see the class docstring)."""
        self._check_gradients()
        beta1, beta2 = self.betas
        self.m = [self._state_like(m, i) for i, m in enumerate(self.m)]  # all prepared before any update
        self.v = [self._state_like(v, i) for i, v in enumerate(self.v)]
        self.t += 1
        for i, p in enumerate(self.params):
            dispatch.op("adam", p.data, p.grad, self.m[i], self.v[i]).step(
                p.data, p.grad, self.m[i], self.v[i], self.lr, beta1, beta2, self.eps, self.weight_decay, self.t
            )

    def __repr__(self):
        return (
            f"Adam(lr={self.lr:g}, betas={self.betas}, eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g}, {len(self.params)} parameters)"
        )


class CosineAnnealingLR:
    """Cosine learning-rate schedule, PyTorch's ``CosineAnnealingLR`` (without restarts).

    After ``t`` calls of ``step()`` (one per epoch), the optimizer's learning rate is

        lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2

    falling from the initial ``lr_0`` to ``eta_min`` at ``t = T_max`` (and rising again
    after, as in PyTorch). Large steps first, small steps to settle at the end.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"CosineAnnealingLR: expected an optimizer with an lr, got {type(optimizer).__name__}")
        if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.optimizer = optimizer
        self.T_max = int(T_max)
        self.eta_min = real_number("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        self.base_lr = optimizer.lr
        self.t = 0

    def step(self):
        """Advance one epoch and set the optimizer's lr for the next one."""
        self.t += 1
        cosine = (1.0 + math.cos(math.pi * self.t / self.T_max)) / 2.0
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * cosine
