r"""Whole-array reductions that the checks need: how many values are NaN or infinite, and
the smallest and largest value (are the labels class indices?).

In symbols:

$$\text{count\_nonfinite}(a) = \big|\{ i : a_i \notin \mathbb{R} \}\big|, \qquad \text{min\_max}(a) = \big(\min_i a_i,\ \max_i a_i\big)$$

    count_nonfinite(a) = #{i : a[i] is NaN or +-inf}
    min_max(a)         = (min_i a[i], max_i a[i])

They are ops like any other so that a loss can check its input where the input lives,
without a copy to the host.
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True)
def count_nonfinite_kernel(a, out):
    """out[0] = the number of elements of the flat array a that are NaN or infinite."""
    count = 0
    for i in range(a.size):
        if not np.isfinite(a[i]):
            count += 1
    out[0] = count


@njit(cache=True)
def min_max_kernel(a, out):
    """out[0] = min_i a[i], out[1] = max_i a[i] over a non-empty flat array."""
    low = a[0]
    high = a[0]
    for i in range(1, a.size):
        low = min(low, a[i])
        high = max(high, a[i])
    out[0] = low
    out[1] = high


def count_nonfinite(a):
    """The number of NaN and infinite values in the float array ``a`` (an int)."""
    a = np.ascontiguousarray(a)
    out = empty(1, np.int64, like=a)
    count_nonfinite_kernel(a.reshape(-1), out)
    return int(out[0])


def min_max(a):
    """``(min, max)`` of the non-empty numeric array ``a``, as Python numbers of its kind."""
    a = np.ascontiguousarray(a)
    out = empty(2, a.dtype, like=a)
    min_max_kernel(a.reshape(-1), out)
    return out[0].item(), out[1].item()
