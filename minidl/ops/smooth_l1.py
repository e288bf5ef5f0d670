r"""Smooth L1 loss (Huber-like): the box-regression loss of Fast R-CNN and SSD
(PyTorch's ``smooth_l1_loss``).

In symbols, with d = pred - target element by element and beta >= 0:

$$\ell(d) = \begin{cases} \dfrac{d^2}{2\beta} & |d| < \beta \\[4pt] |d| - \dfrac{\beta}{2} & \text{otherwise} \end{cases}
  \qquad
  \frac{\partial \ell}{\partial d} = \begin{cases} d / \beta & |d| < \beta \\ \operatorname{sign}(d) & \text{otherwise} \end{cases}$$

Near zero it is a parabola (small errors give small, smooth gradients, as with L2); far
from zero it is a straight line (a large error, an outlier or a bad early box, gives a
gradient of size 1, not one proportional to the error as with L2, which would blow up the
step). The two pieces meet with equal value and slope at |d| = beta. With beta = 0 it is
the L1 loss |d|.

Forward, over all M elements (flattened to one index i):

    d       = pred[i] - target[i]
    loss[i] = d * d / (2 beta)      if |d| < beta
            = |d| - beta / 2        otherwise
    L       = sum_i loss[i] / M  ("mean"),  sum_i loss[i]  ("sum"),  or the array loss  ("none")

Backward, with the upstream gradient dl (1 for "sum", 1 / M for every element for
"mean", an array of loss's shape for "none"; ``minidl/reduction.py``):

    dpred[i] = dl[i] * (d / beta   if |d| < beta   else   sign(d))

(the target is data: it gets no gradient).
"""

import numpy as np
from numba import njit

from ..device import empty
from ..reduction import flat, reduced, upstream


@njit(cache=True, inline="always")
def smooth_l1_element(d, beta):
    """(loss, d loss / d d) of one difference d = pred - target."""
    if abs(d) < beta:
        return 0.5 * d * d / beta, d / beta
    sign = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)  # (np.sign has no GPU version)
    return abs(d) - 0.5 * beta, sign


@njit(cache=True)
def smooth_l1_forward_kernel(pred, target, beta, loss, total):
    """loss[i] for every element and total[0] = their sum (in float64)."""
    s = 0.0
    for i in range(pred.size):
        value, _ = smooth_l1_element(pred[i] - target[i], beta)
        loss[i] = value
        s += loss[i]  # (in the loss's dtype, as the GPU sums it)
    total[0] = s


@njit(cache=True)
def smooth_l1_backward_kernel(pred, target, beta, dl, per_element, dpred):
    """dpred[i] = dl * d loss[i] / d pred[i], with dl[i] (``per_element``) or dl[0]."""
    for i in range(pred.size):
        _, slope = smooth_l1_element(pred[i] - target[i], beta)
        dpred[i] = (dl[i] if per_element else dl[0]) * slope


def forward(pred, target, beta=1.0, reduction="mean"):
    """The loss of pred against target (same shape, float, any shape): a float for "mean"
    and "sum", the per-element losses (pred's shape and dtype) for "none"."""
    shape = pred.shape
    pred, target = flat(pred, target)
    loss, total = empty(pred.shape, pred.dtype, like=pred), empty(1, np.float64, like=pred)
    smooth_l1_forward_kernel(pred, target, pred.dtype.type(beta), loss, total)
    return reduced(loss, total, reduction, shape)


def backward(pred, target, beta=1.0, reduction="mean", dy=None):
    """d L / d pred (pred's shape and dtype); ``dy`` (loss's shape) is the upstream gradient
    for reduction "none" and must be None otherwise."""
    shape = pred.shape
    pred, target = flat(pred, target)
    dpred = empty(pred.shape, pred.dtype, like=pred)
    dl = upstream(dy, reduction, pred)
    smooth_l1_backward_kernel(pred, target, pred.dtype.type(beta), dl, reduction == "none", dpred)
    return dpred.reshape(shape)
