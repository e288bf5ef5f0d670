"""Which sliding windows cover a pixel: what every GATHER of a backward pass needs.

Window oh covers rows oh*s - p .. oh*s - p + K - 1 (kernel K, stride s, padding p), so row h
lies in the windows with

    (h + p - K + 1) / s  <=  oh  <=  (h + p) / s,      0 <= oh < O

A thread that computes the gradient of pixel h loops over exactly these oh (and the same
for the columns) and reads their upstream gradients: each pixel is written by one thread,
so no two threads ever add into the same place.
"""

from numba import cuda


@cuda.jit(device=True)
def covering_windows(h, K, s, p, O):
    """(first, stop): the windows oh = first .. stop - 1 of an output of length O that
    cover position h (empty when first >= stop)."""
    low = h + p - K + 1
    first = (low + s - 1) // s if low > 0 else 0  # ceil(low / s), at least 0
    stop = min((h + p) // s + 1, O)
    return first, stop
