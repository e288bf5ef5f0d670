r"""ReLU, the rectified linear unit, element by element: y = max(x, 0).

In symbols:

$$y_i = \max(x_i, 0), \qquad \frac{\partial L}{\partial x_i} = [x_i > 0]\; \frac{\partial L}{\partial y_i}$$

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

from ..device import empty


@njit(cache=True)
def relu_forward_kernel(x, y):
    """y[i] = max(x[i], 0) over flat arrays; y is overwritten."""
    for i in range(x.size):
        y[i] = 0 if x[i] < 0 else x[i]  # a NaN stays NaN (NaN < 0 is False), as in PyTorch


@njit(cache=True)
def relu_backward_kernel(dy, x, dx):
    """dx[i] = dy[i] where x[i] > 0, else 0; dx is overwritten."""
    for i in range(x.size):
        dx[i] = dy[i] if x[i] > 0 else 0


def forward(x):
    """y = max(x, 0) element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    x = np.ascontiguousarray(x)
    y = empty(x.shape, x.dtype, like=x)
    relu_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, x):
    """dx = dy * [x > 0]. dy, x (forward's input): same shape; returns dx of that shape."""
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    dx = empty(x.shape, x.dtype, like=x)
    relu_backward_kernel(dy.reshape(-1), x.reshape(-1), dx.reshape(-1))
    return dx
