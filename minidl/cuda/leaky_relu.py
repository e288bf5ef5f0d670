"""Leaky ReLU on the GPU, element by element (the math: ``minidl/ops/leaky_relu.py``)."""

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def leaky_relu_forward_kernel(x, a, y):
    """Thread i: y[i] = x[i] if x[i] > 0 else a * x[i]."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = x[i] if x[i] > 0 else a * x[i]


@cuda.jit
def leaky_relu_backward_kernel(dy, x, a, dx):
    """Thread i: dx[i] = dy[i] if x[i] > 0 else a * dy[i]."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        dx[i] = dy[i] if x[i] > 0 else a * dy[i]


def forward(x, negative_slope=0.01):
    """Leaky ReLU element-wise. x: any shape, float32/float64 device array."""
    y = empty(x.shape, x.dtype, like=x)
    launch(leaky_relu_forward_kernel, x.size, x.reshape(-1), x.dtype.type(negative_slope), y.reshape(-1))
    return y


def backward(dy, x, negative_slope=0.01):
    """dx = dy * (1 if x > 0 else negative_slope). dy, x (forward's input): same shape."""
    dx = empty(x.shape, x.dtype, like=x)
    launch(
        leaky_relu_backward_kernel, x.size, dy.reshape(-1), x.reshape(-1), x.dtype.type(negative_slope), dx.reshape(-1)
    )
    return dx
