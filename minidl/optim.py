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
import numbers

import numpy as np

from . import dispatch
from .device import astype, device_of, to_device, zeros
from .nn.module import Parameter


class Optimizer:
    """Base class: holds the list of Parameters to update and clears their gradients.

    ``params`` is any iterable of ``Parameter`` (usually ``model.parameters()``). Subclasses
    implement ``step()``. Hyper-parameters are plain attributes (``opt.lr = 1e-4`` changes
    the learning rate from the next step on).
    """

    def __init__(self, params):
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(f"{name}: expected an iterable of Parameters (e.g. model.parameters()), "
                            f"got one Parameter; wrap it in a list")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name}: expected an iterable of Parameters (e.g. model.parameters()), "
                            f"got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list (does the model have any parameters?)")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a minidl Parameter")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a Parameter appears more than once in the parameter list "
                             f"(it would be updated twice per step)")
        self.params = params

    def zero_grad(self):
        """Set every parameter's ``.grad`` to zero (backward adds into it)."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        """Update every parameter's ``.data`` from its ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _state_like(self, state, p):
        """A state array (momentum buffer, moment) matching ``p``: zeros if there is none yet,
        converted if ``p.data`` changed dtype or device since the last step (``model.to(...)``)."""
        if state is None:
            return zeros(p.shape, p.dtype, like=p.data)
        if tuple(state.shape) != tuple(p.shape):
            raise ValueError(
                f"{type(self).__name__}: a parameter changed shape from {tuple(state.shape)} to {p.shape} "
                f"since the last step; make a new optimiser for the new parameters"
            )
        return astype(to_device(state, device_of(p.data)), p.dtype)


def _check_number(name, arg, value, low, low_inclusive=True):
    """``value`` must be a real number >= low (or > low when ``low_inclusive`` is False)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {arg} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < low or (value == low and not low_inclusive):
        relation = ">=" if low_inclusive else ">"
        raise ValueError(f"{name}: {arg} must be {relation} {low:g}, got {value}")
    return float(value)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    ``SGD(params, lr, momentum=0, weight_decay=0, nesterov=False)``; for each parameter p:

        g   = grad + weight_decay * p
        buf = g                          on the first step, then
        buf = momentum * buf + g
        g   = g + momentum * buf         if nesterov, else  g = buf
        p   = p - lr * g

    (PyTorch's update with ``dampening=0``; with ``momentum=0`` simply ``p = p - lr * g``.)
    ``momentum_buffers[i]`` is the velocity ``buf`` of ``params[i]`` (None before step 1).
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        self.lr = _check_number("SGD", "lr", lr, 0.0, low_inclusive=False)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0)
        self.weight_decay = _check_number("SGD", "weight_decay", weight_decay, 0.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0 "
                             "(Nesterov momentum is a look-ahead along the velocity)")
        self.nesterov = bool(nesterov)
        self.momentum_buffers = [None] * len(self.params)

    def step(self):
        """One update of every parameter (see the class docstring)."""
        for i, p in enumerate(self.params):
            buf = None
            first_step = self.momentum_buffers[i] is None
            if self.momentum != 0:
                buf = self._state_like(self.momentum_buffers[i], p)  # zeros, overwritten by g at step 1
                self.momentum_buffers[i] = buf
            dispatch.op("sgd", p.data, p.grad, buf).step(
                p.data, p.grad, buf, self.lr, self.momentum, self.weight_decay, self.nesterov, first_step)

    def __repr__(self):
        return (f"SGD(lr={self.lr:g}, momentum={self.momentum:g}, weight_decay={self.weight_decay:g}, "
                f"nesterov={self.nesterov}, {len(self.params)} parameters)")


class Adam(Optimizer):
    """Adam: per-element step sizes from running moments of the gradient.

    ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)``; at step t,
    for each parameter p:

        g     = grad + weight_decay * p
        m     = beta1 * m + (1 - beta1) * g
        v     = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p     = p - lr * m_hat / (sqrt(v_hat) + eps)

    ``weight_decay`` is PyTorch's ``Adam`` L2 penalty (added to the gradient, then scaled
    by the adaptive step), not AdamW's decoupled decay. ``m[i]``, ``v[i]`` are the moments
    of ``params[i]``; ``t`` counts the steps taken.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = _check_number("Adam", "lr", lr, 0.0, low_inclusive=False)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        for k, beta in enumerate((beta1, beta2), start=1):
            _check_number("Adam", f"beta{k}", beta, 0.0)
            if beta >= 1:
                raise ValueError(f"Adam: beta{k} must be in [0, 1), got {beta}")
        self.betas = (float(beta1), float(beta2))
        self.eps = _check_number("Adam", "eps", eps, 0.0)
        self.weight_decay = _check_number("Adam", "weight_decay", weight_decay, 0.0)
        self.t = 0
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)

    def step(self):
        """One update of every parameter (see the class docstring)."""
        beta1, beta2 = self.betas
        self.t += 1
        for i, p in enumerate(self.params):
            m = self.m[i] = self._state_like(self.m[i], p)
            v = self.v[i] = self._state_like(self.v[i], p)
            dispatch.op("adam", p.data, p.grad, m, v).step(
                p.data, p.grad, m, v, self.lr, beta1, beta2, self.eps, self.weight_decay, self.t)

    def __repr__(self):
        return (f"Adam(lr={self.lr:g}, betas={self.betas}, eps={self.eps:g}, "
                f"weight_decay={self.weight_decay:g}, {len(self.params)} parameters)")


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
        self.eta_min = _check_number("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        self.base_lr = optimizer.lr
        self.t = 0

    def step(self):
        """Advance one epoch and set the optimizer's lr for the next one."""
        self.t += 1
        cosine = (1.0 + math.cos(math.pi * self.t / self.T_max)) / 2.0
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * cosine
