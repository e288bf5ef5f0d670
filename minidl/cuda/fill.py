"""Fill on the GPU: out[i] = value for every i, in place (``minidl/ops/fill.py``)."""

from numba import cuda

from ._launch import launch


@cuda.jit
def fill_kernel(out, value):
    """Thread i: out[i] = value."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = value


def fill(out, value):
    """Set every element of the device array ``out`` to ``value``; returns out."""
    launch(fill_kernel, out.size, out.reshape(-1), out.dtype.type(value))
    return out
