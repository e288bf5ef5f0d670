r"""Setting every element of an array to one value, in place: ``zero_grad`` and the zeros
that a GPU array needs (``numba.cuda.device_array`` leaves memory as it finds it).

In symbols:

$$\mathrm{out}_i = v \quad \text{for every } i$$

    out[i] = value      for every i
"""

from numba import njit


@njit(cache=True)
def fill_kernel(out, value):
    """out[i] = value over a flat array."""
    for i in range(out.size):
        out[i] = value


def fill(out, value):
    """Set every element of the C-contiguous array ``out`` to ``value``; returns out."""
    fill_kernel(out.reshape(-1), out.dtype.type(value))
    return out
