r"""Linear (fully connected) layer: y = x w^T + b.

In symbols:

$$y_{n,o} = \sum_i x_{n,i}\, w_{o,i} + b_o, \qquad
  \frac{\partial L}{\partial x} = \delta\, w, \quad \frac{\partial L}{\partial w} = \delta^\top x, \quad
  \frac{\partial L}{\partial b_o} = \sum_n \delta_{n,o}, \qquad \delta = \frac{\partial L}{\partial y}$$

Forward, for a batch of N samples with ``in`` input and ``out`` output features:

    y[n, o] = sum_i x[n, i] * w[o, i]  +  b[o]

    x: (N, in)    w: (out, in)  (PyTorch's layout)    b: (out,) or None    y: (N, out)

Backward. Given dy = dL/dy (N, out), the chain rule through the one sum above gives

    dx[n, i] = sum_o dy[n, o] * (d y[n, o] / d x[n, i]) = sum_o dy[n, o] * w[o, i]
               ->  dx = dy w                        (N, out) @ (out, in) = (N, in)
    dw[o, i] = sum_n dy[n, o] * x[n, i]
               ->  dw = dy^T x                      (out, N) @ (N, in)   = (out, in)
    db[o]    = sum_n dy[n, o]                       (each b[o] is added to every sample)

The file shows those sums first as loops over n, o, i (``reference_*``, what
``MINIDL_REFERENCE=1`` runs, see minidl/reference.py), then as the three matrix products
the layer uses: ``np.dot``, which Numba hands to BLAS, much faster than any triple loop.
The tests hold the two equal. The bias and its gradient are ``ops/bias.py`` (shared with
the convolutions).
"""

import numpy as np
from numba import njit

from .. import reference
from ..device import empty
from . import bias

# --- the textbook form ----------------------------------------------------------------------


@njit(cache=True)
def reference_forward_kernel(x, w, y):
    """y[n, o] = sum_i x[n, i] * w[o, i]; y (N, out) is overwritten."""
    N, IN = x.shape
    OUT = w.shape[0]
    for n in range(N):
        for o in range(OUT):
            s = 0.0
            for i in range(IN):
                s += x[n, i] * w[o, i]
            y[n, o] = s


@njit(cache=True)
def reference_backward_kernel(dy, x, w, dx, dw):
    """dx[n, i] = sum_o dy[n, o] * w[o, i] and dw[o, i] = sum_n dy[n, o] * x[n, i];
    dx (N, in) and dw (out, in) are overwritten."""
    N, IN = x.shape
    OUT = w.shape[0]
    for n in range(N):
        for i in range(IN):
            s = 0.0
            for o in range(OUT):
                s += dy[n, o] * w[o, i]
            dx[n, i] = s
    for o in range(OUT):
        for i in range(IN):
            s = 0.0
            for n in range(N):
                s += dy[n, o] * x[n, i]
            dw[o, i] = s


# --- the fast form: BLAS -------------------------------------------------------------------


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
    (reference_forward_kernel if reference.enabled() else linear_forward_kernel)(x, w, y)
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
    kernel = reference_backward_kernel if reference.enabled() else linear_backward_kernel
    kernel(dy, np.ascontiguousarray(x), np.ascontiguousarray(w), dx, dw)
    db = bias.backward(dy) if has_bias else None
    return dx, dw, db
