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
triple loop. The bias sum is an explicit loop.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def linear_forward_kernel(x, w):
    """y = x w^T: y[n, o] = sum_i x[n, i] w[o, i]."""
    return np.dot(x, w.T)


@njit(cache=True)
def add_bias_kernel(y, b):
    """y[n, o] += b[o], in place."""
    N, OUT = y.shape
    for n in range(N):
        for o in range(OUT):
            y[n, o] += b[o]


@njit(cache=True)
def linear_backward_kernel(dy, x, w):
    """dx = dy w (N, in) and dw = dy^T x (out, in)."""
    dx = np.dot(dy, w)
    dw = np.dot(dy.T, x)
    return dx, dw


@njit(cache=True)
def bias_backward_kernel(dy):
    """db[o] = sum_n dy[n, o]."""
    N, OUT = dy.shape
    db = np.zeros(OUT, dtype=dy.dtype)
    for n in range(N):
        for o in range(OUT):
            db[o] += dy[n, o]
    return db


def forward(x, w, b=None):
    """y = x w^T + b.

    x: (N, in), w: (out, in), b: (out,) or None, all of one float dtype.
    Returns y: (N, out), same dtype.
    """
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    y = linear_forward_kernel(x, w)
    if b is not None:
        add_bias_kernel(y, np.ascontiguousarray(b))
    return y


def backward(dy, x, w, has_bias=True):
    """Gradients of y = x w^T + b, in the order of forward's inputs.

    dy: (N, out), x: (N, in) (forward's input), w: (out, in).
    Returns (dx (N, in), dw (out, in), db (out,) or None when ``has_bias`` is False).
    """
    dy = np.ascontiguousarray(dy)
    dx, dw = linear_backward_kernel(dy, np.ascontiguousarray(x), np.ascontiguousarray(w))
    db = bias_backward_kernel(dy) if has_bias else None
    return dx, dw, db
