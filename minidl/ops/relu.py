"""ReLU, the rectified linear unit, element by element: y = max(x, 0).

Forward, for every element i of an array of any shape (flattened to one index):

    y[i] = x[i]   if x[i] >= 0
           0      if x[i] < 0

Backward. dy[i]/dx[i] is 1 where x[i] > 0 and 0 where x[i] < 0; at the kink x[i] = 0 we
take 0, as PyTorch does. Each y[i] depends on x[i] alone, so the Jacobian is diagonal:

    dx[i] = dy[i]   if x[i] > 0
            0       otherwise
"""
import numpy as np
from numba import njit


@njit(cache=True)
def relu_forward_kernel(x):
    """y[i] = max(x[i], 0) over a flat array."""
    y = np.empty_like(x)
    for i in range(x.size):
        y[i] = 0 if x[i] < 0 else x[i]  # a NaN stays NaN (NaN < 0 is False), as in PyTorch
    return y


@njit(cache=True)
def relu_backward_kernel(dy, x):
    """dx[i] = dy[i] where x[i] > 0, else 0."""
    dx = np.empty_like(x)
    for i in range(x.size):
        dx[i] = dy[i] if x[i] > 0 else 0
    return dx


def forward(x):
    """y = max(x, 0) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    shape = np.shape(x)
    x = np.ascontiguousarray(x).reshape(-1)
    return relu_forward_kernel(x).reshape(shape)


def backward(dy, x):
    """dx = dy * [x > 0]. dy, x (forward's input): same shape; returns dx of that shape."""
    shape = np.shape(x)
    x = np.ascontiguousarray(x).reshape(-1)
    dy = np.ascontiguousarray(dy).reshape(-1)
    return relu_backward_kernel(dy, x).reshape(shape)
