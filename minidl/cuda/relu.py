"""ReLU on the GPU: y = max(x, 0) element by element (the math: ``minidl/ops/relu.py``).

The simplest kernel, and the pattern of every element-wise one: thread i of the grid
computes element i (then i + gridsize, ... : the grid-stride loop of ``_launch.py``).
"""

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def relu_forward_kernel(x, y):
    """Thread i: y[i] = max(x[i], 0) (a NaN stays NaN, as on the CPU)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = 0 if x[i] < 0 else x[i]


@cuda.jit
def relu_backward_kernel(dy, x, dx):
    """Thread i: dx[i] = dy[i] where x[i] > 0, else 0."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        dx[i] = dy[i] if x[i] > 0 else 0


def forward(x):
    """y = max(x, 0) element-wise. x: any shape, float32/float64 device array."""
    y = empty(x.shape, x.dtype, like=x)
    launch(relu_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def backward(dy, x):
    """dx = dy * [x > 0]. dy, x (forward's input): same shape."""
    dx = empty(x.shape, x.dtype, like=x)
    launch(relu_backward_kernel, x.size, dy.reshape(-1), x.reshape(-1), dx.reshape(-1))
    return dx
