"""Linear (fully connected) layer: y = x w^T + b.

Forward, for a batch of N samples with ``in`` input and ``out`` output features:

    y[n, o] = sum_i x[n, i] * w[o, i]  +  b[o]

    x: (N, in)    w: (out, in)  (PyTorch's layout)    b: (out,) or None    y: (N, out)

Backward. Given dy = dL/dy (N, out), the chain rule through the one sum above gives

    dx[n, i] = sum_o dy[n, o] * (d y[n, o] / d x[n, i]) = sum_o dy[n, o] * w[o, i]
               ->  dx = dy w                        (N, out) @ (out, in) = (N, in)
    dw[o, i] = sum_n dy[n, o] * x[n, i]
               ->  dw = dy^T x                      (out, N) @ (N, in)   = (out, in)
    db[o]    = sum_n dy[n, o]                       (each b[o] is added to every sample)

The three matrix products are exactly what a loop over n, o, i would compute; they are
written as ``np.dot`` because Numba hands them to BLAS, which is much faster than any
triple loop. The bias and its gradient are ``ops/bias.py`` (shared with the convolutions).
"""

import numpy as np
from numba import njit

from ..device import empty
from . import bias


@njit(cache=True)
def linear_forward_kernel(x, w, y):
    """y = x w^T: y[n, o] = sum_i x[n, i] w[o, i]; y is overwritten."""
    np.dot(x, w.T, y)


@njit(cache=True)
def linear_backward_kernel(dy, x, w, dx, dw):
    """dx = dy w (N, in) and dw = dy^T x (out, in); both are overwritten."""
    np.dot(dy, w, dx)
    np.dot(dy.T, x, dw)


def forward(x, w, b=None):
    """y = x w^T + b.

    x: (N, in), w: (out, in), b: (out,) or None, all of one float dtype.
    Returns y: (N, out), same dtype.
    """
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    y = empty((x.shape[0], w.shape[0]), x.dtype, like=x)
    linear_forward_kernel(x, w, y)
    if b is not None:
        bias.forward(y, b)
    return y


def backward(dy, x, w, has_bias=True):
    """Gradients of y = x w^T + b, in the order of forward's inputs.

    dy: (N, out), x: (N, in) (forward's input), w: (out, in).
    Returns (dx (N, in), dw (out, in), db (out,) or None when ``has_bias`` is False).
    """
    dy = np.ascontiguousarray(dy)
    dx = empty(x.shape, dy.dtype, like=dy)
    dw = empty(w.shape, dy.dtype, like=dy)
    linear_backward_kernel(dy, np.ascontiguousarray(x), np.ascontiguousarray(w), dx, dw)
    db = bias.backward(dy) if has_bias else None
    return dx, dw, db
