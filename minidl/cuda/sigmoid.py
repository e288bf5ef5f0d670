"""The logistic sigmoid on the GPU, element by element (the math and why it is computed
through exp(-|x|): ``minidl/ops/sigmoid.py``)."""

import math

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def sigmoid_forward_kernel(x, y):
    """Thread i: y[i] = 1 / (1 + exp(-x[i])), via z = exp(-|x[i]|) so that nothing overflows."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        z = math.exp(-abs(x[i]))
        if x[i] >= 0:
            y[i] = 1 / (1 + z)
        else:
            y[i] = z / (1 + z)


@cuda.jit
def sigmoid_backward_kernel(dy, y, dx):
    """Thread i: dx[i] = dy[i] * y[i] * (1 - y[i])."""
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dx[i] = dy[i] * y[i] * (1 - y[i])


def forward(x):
    """y = sigmoid(x) element-wise. x: any shape, float32/float64 device array."""
    y = empty(x.shape, x.dtype, like=x)
    launch(sigmoid_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, y):
    """dx = dy * y * (1 - y), from forward's *output* y. dy, y: same shape."""
    dx = empty(y.shape, y.dtype, like=y)
    launch(sigmoid_backward_kernel, y.size, dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
