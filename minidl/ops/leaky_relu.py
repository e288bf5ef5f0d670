r"""Leaky ReLU, element by element: a ReLU that lets a small slope through for x < 0.

In symbols:

$$y_i = \begin{cases} x_i & x_i > 0 \\ a\, x_i & \text{otherwise} \end{cases}
  \qquad \frac{\partial L}{\partial x_i} = \begin{cases} \partial L / \partial y_i & x_i > 0 \\ a\, \partial L / \partial y_i & \text{otherwise} \end{cases}$$

Forward, for every element i (any shape, flattened), with ``negative_slope`` = a:

    y[i] = x[i]       if x[i] > 0
           a * x[i]   otherwise

Backward. The Jacobian is diagonal, dy[i]/dx[i] = 1 for x[i] > 0 and a otherwise (at the
kink x[i] = 0 we take a, as PyTorch does):

    dx[i] = dy[i]       if x[i] > 0
            a * dy[i]   otherwise
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True)
def leaky_relu_forward_kernel(x, a, y):
    """y[i] = x[i] if x[i] > 0 else a * x[i]; y is overwritten."""
    for i in range(x.size):
        y[i] = x[i] if x[i] > 0 else a * x[i]


@njit(cache=True)
def leaky_relu_backward_kernel(dy, x, a, dx):
    """dx[i] = dy[i] if x[i] > 0 else a * dy[i]; dx is overwritten."""
    for i in range(x.size):
        dx[i] = dy[i] if x[i] > 0 else a * dy[i]


def forward(x, negative_slope=0.01):
    """Leaky ReLU element-wise. x: any shape, float32/float64; y: same shape and dtype."""
    x = np.ascontiguousarray(x)
    y = empty(x.shape, x.dtype, like=x)
    a = x.dtype.type(negative_slope)  # the slope in x's dtype: one kernel per dtype
    leaky_relu_forward_kernel(x.reshape(-1), a, y.reshape(-1))
    return y


def backward(dy, x, negative_slope=0.01):
    """dx = dy * (1 if x > 0 else negative_slope). dy, x (forward's input): same shape."""
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    dx = empty(x.shape, x.dtype, like=x)
    leaky_relu_backward_kernel(dy.reshape(-1), x.reshape(-1), x.dtype.type(negative_slope), dx.reshape(-1))
    return dx
