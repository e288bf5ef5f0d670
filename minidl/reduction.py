"""What the element-wise losses (``smooth_l1``, ``bce_with_logits``) and their CUDA twins
share: flattening their inputs, and PyTorch's three reductions.

    "mean"   L = sum_i loss[i] / M      backward: dl[i] = 1 / M for every element
    "sum"    L = sum_i loss[i]          backward: dl[i] = 1
    "none"   the array loss itself      backward: dl = the upstream gradient dy, loss's shape

The kernels take ``dl`` as an array and a flag ``per_element``: dl[i] for "none", the one
number dl[0] otherwise.
"""

import numpy as np

from .device import as_array_like, to_host

REDUCTIONS = ("mean", "sum", "none")


def flat(pred, target):
    """pred and target as flat C-contiguous arrays where pred lives, the target in pred's dtype."""
    pred = as_array_like(pred, like=pred).reshape(-1)
    return pred, as_array_like(target, like=pred, dtype=pred.dtype).reshape(-1)


def reduced(loss, total, reduction, shape):
    """What forward returns: the per-element ``loss`` in ``shape`` for "none", else the
    float mean or sum from ``total`` (a 1-element float64 array holding the sum)."""
    if reduction == "none":
        return loss.reshape(shape)
    return float(to_host(total)[0]) / (loss.size if reduction == "mean" else 1)


def upstream(dy, reduction, pred):
    """``dl`` for a backward kernel (see the module docstring), where ``pred`` lives."""
    if reduction == "none":
        return as_array_like(dy, like=pred, dtype=pred.dtype).reshape(-1)
    return as_array_like(np.full(1, 1.0 / pred.size if reduction == "mean" else 1.0, pred.dtype), like=pred)
