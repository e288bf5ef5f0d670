"""tanh on the GPU, element by element (the math: ``minidl/ops/tanh.py``)."""

import math

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def tanh_forward_kernel(x, y):
    """Thread i: y[i] = tanh(x[i])."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = math.tanh(x[i])


@cuda.jit
def tanh_backward_kernel(dy, y, dx):
    """Thread i: dx[i] = dy[i] * (1 - y[i]^2)."""
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dx[i] = dy[i] * (1 - y[i] * y[i])


def forward(x):
    """y = tanh(x) element-wise. x: any shape, float32/float64 device array."""
    y = empty(x.shape, x.dtype, like=x)
    launch(tanh_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, y):
    """dx = dy * (1 - y^2), from forward's *output* y. dy, y: same shape."""
    dx = empty(y.shape, y.dtype, like=y)
    launch(tanh_backward_kernel, y.size, dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
