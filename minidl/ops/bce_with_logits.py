r"""Binary cross-entropy on logits: the loss of a yes/no prediction per element (an object
or not, a mask pixel or not), with the sigmoid inside (PyTorch's
``binary_cross_entropy_with_logits``).

In symbols, for a logit x, a target y in [0, 1] and a positive-class weight p (1 by
default), with sigma(x) = 1 / (1 + e^{-x}):

$$\ell = -\big[p\, y \log \sigma(x) + (1 - y) \log (1 - \sigma(x))\big], \qquad
  \frac{\partial \ell}{\partial x} = \sigma(x)\,(p y + 1 - y) - p y$$

which for p = 1 is the familiar sigma(x) - y: the prediction minus the truth.

Computed as written, sigma(x) rounds to exactly 1 for x > 37 in float64 (17 in float32)
and log(1 - sigma(x)) is log(0) = -inf. Both logs are softplus functions,

    -log sigma(x)       = log(1 + e^{-x}) = max(-x, 0) + log(1 + e^{-|x|})
    -log(1 - sigma(x))  = log(1 + e^{x})  = max(x, 0)  + log(1 + e^{-|x|})

and e^{-|x|} <= 1 never overflows, so for a logit of 1e4 the loss is 1e4 (exact), not inf
or NaN. Forward, over all M elements (one index i; p indexed by the last axis, c = i mod C):

    sp      = log1p(exp(-|x[i]|))
    loss[i] = p[c] y[i] (max(-x[i], 0) + sp) + (1 - y[i]) (max(x[i], 0) + sp)
    L       = mean, sum or the array loss (``minidl/reduction.py``)

Backward, with sigma(x) computed through exp(-|x|) as well (``ops/sigmoid.py``):

    dx[i] = dl[i] * (sigma(x[i]) (p[c] y[i] + 1 - y[i]) - p[c] y[i])

``pos_weight`` p > 1 counts every positive p times: with few positives (a small object in
a large mask) it balances the two classes (PyTorch's ``pos_weight``, one per class C of
the last axis).
"""

import math

import numpy as np
from numba import njit

from ..device import as_array_like, empty
from ..reduction import flat, reduced, upstream
from .sigmoid import logistic


@njit(cache=True, inline="always")
def bce_element(x, y, p):
    """(loss, d loss / d x) of one logit x with target y and positive weight p."""
    sp = math.log1p(math.exp(-abs(x)))
    loss = p * y * (max(-x, 0.0) + sp) + (1 - y) * (max(x, 0.0) + sp)
    return loss, logistic(x) * (p * y + 1 - y) - p * y


@njit(cache=True)
def bce_with_logits_forward_kernel(x, y, pos_weight, loss, total):
    """loss[i] for every element and total[0] = their sum (in float64)."""
    C = pos_weight.size
    s = 0.0
    for i in range(x.size):
        value, _ = bce_element(x[i], y[i], pos_weight[i % C])
        loss[i] = value
        s += loss[i]  # (in the loss's dtype, as the GPU sums it)
    total[0] = s


@njit(cache=True)
def bce_with_logits_backward_kernel(x, y, pos_weight, dl, per_element, dx):
    """dx[i] = dl * d loss[i] / d x[i], with dl[i] (``per_element``) or dl[0]."""
    C = pos_weight.size
    for i in range(x.size):
        _, slope = bce_element(x[i], y[i], pos_weight[i % C])
        dx[i] = (dl[i] if per_element else dl[0]) * slope


def _weights(pos_weight, x):
    """``pos_weight`` as a flat array in x's dtype on x's device; None is one weight of 1."""
    p = np.ones(1) if pos_weight is None else pos_weight
    return as_array_like(p, like=x, dtype=x.dtype).reshape(-1)


def forward(x, y, pos_weight=None, reduction="mean"):
    """The loss of logits x against targets y in [0, 1] (same shape, float); pos_weight
    None or (C,) for the last axis of size C. A float for "mean"/"sum", the per-element
    losses (x's shape and dtype) for "none"."""
    shape = x.shape
    x, y = flat(x, y)
    loss, total = empty(x.shape, x.dtype, like=x), empty(1, np.float64, like=x)
    bce_with_logits_forward_kernel(x, y, _weights(pos_weight, x), loss, total)
    return reduced(loss, total, reduction, shape)


def backward(x, y, pos_weight=None, reduction="mean", dy=None):
    """d L / d x (x's shape and dtype); ``dy`` (loss's shape) is the upstream gradient for
    reduction "none" and must be None otherwise."""
    shape = x.shape
    x, y = flat(x, y)
    dx = empty(x.shape, x.dtype, like=x)
    bce_with_logits_backward_kernel(x, y, _weights(pos_weight, x), upstream(dy, reduction, x), reduction == "none", dx)
    return dx.reshape(shape)
