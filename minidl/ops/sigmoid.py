"""The logistic sigmoid, element by element: y = 1 / (1 + exp(-x)).

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
import numpy as np
from numba import njit


@njit(cache=True)
def sigmoid_forward_kernel(x):
    """y[i] = 1 / (1 + exp(-x[i])), via z = exp(-|x[i]|) so that nothing overflows."""
    y = np.empty_like(x)
    for i in range(x.size):
        z = np.exp(-abs(x[i]))
        if x[i] >= 0:
            y[i] = 1 / (1 + z)
        else:
            y[i] = z / (1 + z)
    return y


@njit(cache=True)
def sigmoid_backward_kernel(dy, y):
    """dx[i] = dy[i] * y[i] * (1 - y[i])."""
    dx = np.empty_like(y)
    for i in range(y.size):
        dx[i] = dy[i] * y[i] * (1 - y[i])
    return dx


def forward(x):
    """y = sigmoid(x) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    shape = np.shape(x)
    x = np.ascontiguousarray(x).reshape(-1)
    return sigmoid_forward_kernel(x).reshape(shape)


def backward(dy, y):
    """dx = dy * y * (1 - y), from forward's *output* y. dy, y: same shape."""
    shape = np.shape(y)
    y = np.ascontiguousarray(y).reshape(-1)
    dy = np.ascontiguousarray(dy).reshape(-1)
    return sigmoid_backward_kernel(dy, y).reshape(shape)
