r"""The logistic sigmoid, element by element: y = 1 / (1 + exp(-x)).

In symbols:

$$y = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \frac{\partial L}{\partial x} = y\,(1 - y)\, \frac{\partial L}{\partial y}$$

Forward, for every element i (any shape, flattened). Written as it stands, exp(-x)
overflows for x below about -709 (float64) or -88 (float32). With z = exp(-|x|), which
lies in (0, 1] and so can never overflow, the same function reads

    y[i] = 1 / (1 + z)    if x[i] >= 0        (z = exp(-x[i]))
           z / (1 + z)    if x[i] <  0        (z = exp(x[i]); multiply top and bottom by exp(x))

For |x| large, z underflows to 0 and y is exactly 1 or 0, the function's limits.

Backward. dy/dx = exp(-x) / (1 + exp(-x))^2 = y (1 - y), so the derivative is written
with the forward output y alone (the diagonal Jacobian needs no x):

    dx[i] = dy[i] * y[i] * (1 - y[i])
"""

import math

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True, inline="always")
def logistic(x):
    """1 / (1 + exp(-x)), via z = exp(-|x|) <= 1 so that nothing overflows (also used by
    ``bce_with_logits``)."""
    z = math.exp(-abs(x))
    if x >= 0:
        return 1 / (1 + z)
    return z / (1 + z)


@njit(cache=True)
def sigmoid_forward_kernel(x, y):
    """y[i] = 1 / (1 + exp(-x[i])); y is overwritten."""
    for i in range(x.size):
        y[i] = logistic(x[i])


@njit(cache=True)
def sigmoid_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i]); dx is overwritten."""
    for i in range(y.size):
        dx[i] = dy[i] * y[i] * (1 - y[i])


def forward(x):
    """y = sigmoid(x) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    x = np.ascontiguousarray(x)
    y = empty(x.shape, x.dtype, like=x)
    sigmoid_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, y):
    """dx = dy * y * (1 - y), from forward's *output* y. dy, y: same shape."""
    y, dy = np.ascontiguousarray(y), np.ascontiguousarray(dy)
    dx = empty(y.shape, y.dtype, like=y)
    sigmoid_backward_kernel(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
