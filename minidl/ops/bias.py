r"""A per-channel bias: the "+ b" of Linear and of the (transposed) convolutions.

In symbols:

$$y_{n,c,l} \mathrel{+}= b_c, \qquad \frac{\partial L}{\partial b_c} = \sum_{n} \sum_{l} \frac{\partial L}{\partial y_{n,c,l}}$$

Forward, on y viewed as (N, C, L) (L = 1 for Linear's (N, out), L = OH * OW for feature
maps (N, C, OH, OW)), in place:

    y[n, c, l] += b[c]

Backward. Each b[c] is added to every one of the N * L outputs of channel c, so

    db[c] = sum_n sum_l dy[n, c, l]

(and the gradient flowing on to y's producer is dy itself: adding a constant does not
change it).
"""

import numpy as np
from numba import njit

from ..device import as_ncl, empty


@njit(cache=True)
def add_bias_kernel(y, b):
    """y[n, c, l] += b[c], in place."""
    N, C, L = y.shape
    for n in range(N):
        for c in range(C):
            for l in range(L):
                y[n, c, l] += b[c]


@njit(cache=True, fastmath={"reassoc"})  # the sums in any order (see ops/batchnorm.py)
def bias_backward_kernel(dy, db):
    """db[c] = sum_{n, l} dy[n, c, l] (accumulated in float64); db is overwritten."""
    N, C, L = dy.shape
    for c in range(C):
        s = np.float64(0.0)
        for n in range(N):
            for l in range(L):
                s += dy[n, c, l]
        db[c] = s


def forward(y, b):
    """y += b along axis 1, in place; y: (N, C) or (N, C, H, W) C-contiguous, b: (C,).
    Returns y."""
    add_bias_kernel(as_ncl(y), np.ascontiguousarray(b))
    return y


def backward(dy):
    """db = dy summed over every axis but 1: dy (N, C) or (N, C, H, W) -> (C,)."""
    dy = np.ascontiguousarray(dy)
    db = empty(dy.shape[1], dy.dtype, like=dy)
    bias_backward_kernel(as_ncl(dy), db)
    return db
