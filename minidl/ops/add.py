r"""Addition of two arrays of one shape, element by element, and its in-place form.

In symbols:

$$y_i = a_i + b_i, \qquad \frac{\partial L}{\partial a_i} = \frac{\partial L}{\partial b_i} = \frac{\partial L}{\partial y_i}$$

    forward:     y[i] = a[i] + b[i]          (Residual: y = x + inner(x))
    accumulate:  out[i] += a[i]              (Parameter.grad += dw: gradients add up)

Backward of y = a + b: dy/da and dy/db are identities, so da = db = dy; the layers pass
dy on to both branches and add what comes back with ``forward`` again
(Residual: dx = dy + inner.backward(dy)).
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True)
def add_kernel(a, b, y):
    """y[i] = a[i] + b[i] over flat arrays; y is overwritten."""
    for i in range(a.size):
        y[i] = a[i] + b[i]


@njit(cache=True)
def accumulate_kernel(out, a):
    """out[i] += a[i] over flat arrays, in place."""
    for i in range(out.size):
        out[i] += a[i]


def forward(a, b):
    """y = a + b; a, b of one shape and dtype. Returns a new array."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    y = empty(a.shape, a.dtype, like=a)
    add_kernel(a.reshape(-1), b.reshape(-1), y.reshape(-1))
    return y


def accumulate(out, a):
    """out += a, in place (out C-contiguous, a of out's shape). Returns out."""
    accumulate_kernel(out.reshape(-1), np.ascontiguousarray(a).reshape(-1))
    return out
