"""Numerical gradient checking: is ``backward`` really the derivative of ``forward``?

Central differences: for a scalar function f and every element x_i,

    df/dx_i  ~  (f(x + h e_i) - f(x - h e_i)) / (2 h)

with error O(h^2). For a layer y = layer(x) we check the vector-Jacobian product that
backward computes, with a *random* upstream gradient dy (seeding with all ones would let
errors that cancel along rows, such as in softmax, go unseen): the scalar

    f(x) = sum(layer(x) * dy)

has gradient J^T dy, which is exactly what ``layer.backward(dy)`` must return, and the
same f, differentiated with respect to each parameter, checks ``Parameter.grad``.

Every element is compared, in float64. The error of one element is

    err_i = |analytic_i - numeric_i| / max(1, |analytic_i|, |numeric_i|)

(relative for gradients larger than one, absolute below, so that elements that are zero
up to round-off do not produce meaningless huge ratios). The report gives the worst.
"""

import copy

import numpy as np

from . import rng
from .device import to_device, to_host
from .nn.checks import real_number


def numerical_gradient(f, x, h=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (same shape as x).

    ``x`` is perturbed in place, one element at a time, and restored. ``h`` > 0.
    """
    h = real_number("numerical_gradient", "h (the finite-difference step)", h, 0.0, low_open=True)
    x = np.asarray(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, g = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError(
            "numerical_gradient: x must be reshapeable as a view (e.g. C-contiguous): it is perturbed in place"
        )
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f_plus = float(f(x))
        flat[i] = old - h
        f_minus = float(f(x))
        flat[i] = old
        g[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def relative_error(analytic, numeric):
    """The worst element-wise error ``|a - n| / max(1, |a|, |n|)`` (0 for empty arrays)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(n)))))


class GradCheckReport:
    """Worst error per checked array: ``errors["input"]``, ``errors["0.weight"]``, ..."""

    def __init__(self, errors, tol):
        self.errors = errors
        self.tol = tol

    @property
    def max_error(self):
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self):
        return self.max_error <= self.tol

    def __repr__(self):
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        return f"GradCheckReport({'ok' if self.ok else 'FAILED'}, worst {self.max_error:.2e} <= {self.tol:g}? [{rows}])"


def check_layer(layer, x, target=None, dy=None, h=1e-6, tol=1e-6, seed=0, device="cpu"):
    """Compare every input and parameter gradient of ``layer`` with central differences.

    A float64 copy of ``layer`` (a layer on the CPU) is checked, on ``device`` ("cpu" or
    "cuda"); the layer itself is not modified. ``dy`` is the upstream gradient, drawn from
    N(0, 1) with ``seed`` when not given. For a loss layer pass ``target``: then f is the
    loss itself (``layer(x, target)``) and ``backward()`` takes no upstream gradient.
    Stochastic layers (dropout) see the same random state at every evaluation, so they
    use the same mask throughout. On "cuda" the perturbed input and parameters are copied
    to the device for every evaluation (the finite differences are computed on the host).

    Returns a ``GradCheckReport``; ``report.ok`` is True when the worst error <= ``tol``.
    """
    real_number("check_layer", "h (the finite-difference step)", h, 0.0, low_open=True)
    real_number("check_layer", "tol", tol, 0.0)
    layer = copy.deepcopy(layer).to(np.float64)
    host_params = {key: p.data for key, p in layer.named_parameters()}  # perturbed in place
    layer.to(device)
    x = np.array(x, dtype=np.float64, copy=True)
    state = rng.get_state()

    def run(inp):
        rng.set_state(state)
        if device != "cpu":
            for key, p in layer.named_parameters():
                p.data = to_device(host_params[key], device)
        inp = to_device(inp, device)
        return layer(inp) if target is None else layer(inp, target)

    layer.zero_grad()
    y = run(x)
    if target is None:
        if dy is None:
            dy = np.random.default_rng(seed).standard_normal(np.shape(y))
        dy = np.asarray(dy, dtype=np.float64)
        dx = layer.backward(to_device(dy, device))

        def f(inp):
            return np.sum(to_host(run(inp)) * dy)
    else:
        dx = layer.backward()
        f = run

    analytic = {"input": np.array(to_host(dx), copy=True)}
    analytic.update({key: np.array(to_host(p.grad), copy=True) for key, p in layer.named_parameters()})

    errors = {"input": relative_error(analytic["input"], numerical_gradient(f, x, h))}
    for key in host_params:
        errors[key] = relative_error(analytic[key], numerical_gradient(lambda _: f(x), host_params[key], h))
    rng.set_state(state)
    return GradCheckReport(errors, tol)
