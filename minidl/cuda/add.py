"""Addition on the GPU: y = a + b and out += a, element by element (``minidl/ops/add.py``)."""

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def add_kernel(a, b, y):
    """Thread i: y[i] = a[i] + b[i]."""
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        y[i] = a[i] + b[i]


@cuda.jit
def accumulate_kernel(out, a):
    """Thread i: out[i] += a[i] (each element has one thread: no race, no atomics)."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] += a[i]


def forward(a, b):
    """y = a + b; a, b device arrays of one shape and dtype. Returns a new array."""
    y = empty(a.shape, a.dtype, like=a)
    launch(add_kernel, a.size, a.reshape(-1), b.reshape(-1), y.reshape(-1))
    return y


def accumulate(out, a):
    """out += a, in place. Returns out."""
    launch(accumulate_kernel, out.size, out.reshape(-1), a.reshape(-1))
    return out
