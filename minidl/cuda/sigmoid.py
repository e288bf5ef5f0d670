"""The logistic sigmoid on the GPU, element by element (the math and why it is computed
through exp(-|x|): ``minidl/ops/sigmoid.py``, whose ``logistic`` every thread calls)."""

from numba import cuda

from ..device import empty
from ..ops import sigmoid
from ._launch import from_cpu, launch

logistic = from_cpu(sigmoid.logistic)


@cuda.jit
def sigmoid_forward_kernel(x, y):
    """Thread i: y[i] = 1 / (1 + exp(-x[i])), without overflow."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = logistic(x[i])


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
