"""Mean squared error: the regression loss L = mean((pred - target)^2).

Forward, over all M elements of pred and target (same shape, any shape, flattened to one
index i):

    L = (1 / M) * sum_i (pred[i] - target[i])^2

Backward. Each pred[i] appears in one term of the sum:

    dpred[i] = dL/dpred[i] = (2 / M) * (pred[i] - target[i])

(the target is data, not a parameter: it gets no gradient).
"""
import numpy as np
from numba import njit


@njit(cache=True)
def mse_forward_kernel(pred, target):
    """L = (1/M) sum_i (pred[i] - target[i])^2, summed in float64."""
    total = np.float64(0.0)
    for i in range(pred.size):
        d = pred[i] - target[i]
        total += d * d
    return total / pred.size


@njit(cache=True)
def mse_backward_kernel(pred, target):
    """dpred[i] = 2 / M * (pred[i] - target[i])."""
    M = pred.size
    dpred = np.empty_like(pred)
    for i in range(M):
        dpred[i] = 2 * (pred[i] - target[i]) / M
    return dpred


def _flat(pred, target):
    """pred and target as flat C-contiguous arrays, the target in pred's dtype."""
    pred = np.ascontiguousarray(pred).reshape(-1)
    target = np.ascontiguousarray(target, dtype=pred.dtype).reshape(-1)
    return pred, target


def forward(pred, target):
    """L = mean((pred - target)^2). pred, target: same shape (any), float. Returns a float."""
    return float(mse_forward_kernel(*_flat(pred, target)))


def backward(pred, target):
    """dL/dpred = 2 (pred - target) / M, of pred's shape and dtype."""
    return mse_backward_kernel(*_flat(pred, target)).reshape(np.shape(pred))
