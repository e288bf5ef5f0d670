"""The hyperbolic tangent, element by element: y = tanh(x) = (e^x - e^-x) / (e^x + e^-x).

Forward, for every element i (any shape, flattened):

    y[i] = tanh(x[i])          (in (-1, 1); tanh(x) = 2 sigmoid(2x) - 1)

``np.tanh`` is already stable for large |x| (it returns +-1, never inf / inf).

Backward. d tanh(x)/dx = 1 - tanh(x)^2, so with the forward output y and a diagonal
Jacobian:

    dx[i] = dy[i] * (1 - y[i]^2)
"""
import numpy as np
from numba import njit


@njit(cache=True)
def tanh_forward_kernel(x):
    """y[i] = tanh(x[i])."""
    y = np.empty_like(x)
    for i in range(x.size):
        y[i] = np.tanh(x[i])
    return y


@njit(cache=True)
def tanh_backward_kernel(dy, y):
    """dx[i] = dy[i] * (1 - y[i]^2)."""
    dx = np.empty_like(y)
    for i in range(y.size):
        dx[i] = dy[i] * (1 - y[i] * y[i])
    return dx


def forward(x):
    """y = tanh(x) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    shape = np.shape(x)
    x = np.ascontiguousarray(x).reshape(-1)
    return tanh_forward_kernel(x).reshape(shape)


def backward(dy, y):
    """dx = dy * (1 - y^2), from forward's *output* y. dy, y: same shape."""
    shape = np.shape(y)
    y = np.ascontiguousarray(y).reshape(-1)
    dy = np.ascontiguousarray(dy).reshape(-1)
    return tanh_backward_kernel(dy, y).reshape(shape)
