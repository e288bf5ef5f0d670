r"""The hyperbolic tangent, element by element: y = tanh(x) = (e^x - e^-x) / (e^x + e^-x).

In symbols:

$$y = \tanh x = \frac{e^x - e^{-x}}{e^x + e^{-x}}, \qquad \frac{\partial L}{\partial x} = (1 - y^2)\, \frac{\partial L}{\partial y}$$

Forward, for every element i (any shape, flattened):

    y[i] = tanh(x[i])          (in (-1, 1); tanh(x) = 2 sigmoid(2x) - 1)

``np.tanh`` is already stable for large |x| (it returns +-1, never inf / inf).

Backward. d tanh(x)/dx = 1 - tanh(x)^2, so with the forward output y and a diagonal
Jacobian:

    dx[i] = dy[i] * (1 - y[i]^2)
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True)
def tanh_forward_kernel(x, y):
    """y[i] = tanh(x[i]); y is overwritten."""
    for i in range(x.size):
        y[i] = np.tanh(x[i])


@njit(cache=True)
def tanh_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2); dx is overwritten."""
    for i in range(y.size):
        dx[i] = dy[i] * (1 - y[i] * y[i])


def forward(x):
    """y = tanh(x) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    x = np.ascontiguousarray(x)
    y = empty(x.shape, x.dtype, like=x)
    tanh_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, y):
    """dx = dy * (1 - y^2), from forward's *output* y. dy, y: same shape."""
    y, dy = np.ascontiguousarray(y), np.ascontiguousarray(dy)
    dx = empty(y.shape, y.dtype, like=y)
    tanh_backward_kernel(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
