r"""Mean squared error: the regression loss L = mean((pred - target)^2).

In symbols:

$$L = \frac1M \sum_{i=1}^{M} (\hat y_i - y_i)^2, \qquad \frac{\partial L}{\partial \hat y_i} = \frac{2}{M}\, (\hat y_i - y_i)$$

Forward, over all M elements of pred and target (same shape, any shape, flattened to one
index i):

    L = (1 / M) * sum_i (pred[i] - target[i])^2

Backward. Each pred[i] appears in one term of the sum:

    dpred[i] = dL/dpred[i] = (2 / M) * (pred[i] - target[i])

(the target is data, not a parameter: it gets no gradient).
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True, fastmath={"reassoc"})  # the sum in any order (see ops/batchnorm.py)
def mse_forward_kernel(pred, target, loss):
    """loss[0] = (1/M) sum_i (pred[i] - target[i])^2, summed in float64."""
    total = np.float64(0.0)
    for i in range(pred.size):
        d = pred[i] - target[i]
        total += d * d
    loss[0] = total / pred.size


@njit(cache=True)
def mse_backward_kernel(pred, target, dpred):
    """dpred[i] = 2 / M * (pred[i] - target[i]); dpred is overwritten."""
    M = pred.size
    for i in range(M):
        dpred[i] = 2 * (pred[i] - target[i]) / M


def _flat(pred, target):
    """pred and target as flat C-contiguous arrays, the target in pred's dtype."""
    pred = np.ascontiguousarray(pred).reshape(-1)
    target = np.ascontiguousarray(target, dtype=pred.dtype).reshape(-1)
    return pred, target


def forward(pred, target):
    """L = mean((pred - target)^2). pred, target: same shape (any), float. Returns a float."""
    pred, target = _flat(pred, target)
    loss = empty(1, np.float64, like=pred)
    mse_forward_kernel(pred, target, loss)
    return float(loss[0])


def backward(pred, target):
    """dL/dpred = 2 (pred - target) / M, of pred's shape and dtype."""
    shape = np.shape(pred)
    pred, target = _flat(pred, target)
    dpred = empty(pred.shape, pred.dtype, like=pred)
    mse_backward_kernel(pred, target, dpred)
    return dpred.reshape(shape)
