"""Whole-array reductions on the GPU, for the checks (the definitions:
``minidl/ops/reduce.py``): one block of THREADS threads, each adding up a share of the
array (a block-stride loop), then the shared-memory tree of ``_reduce.py``."""

import math

import numpy as np
from numba import cuda, float64

from ..device import empty
from ._launch import THREADS, launch_rows
from ._reduce import block_min_max, block_sum


@cuda.jit
def count_nonfinite_kernel(a, out):
    """Thread t counts the NaN/inf among a[t], a[t + THREADS], ...; the tree adds the
    counts; thread 0 writes out[0]."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    count = 0.0
    for i in range(tid, a.size, cuda.blockDim.x):
        if not math.isfinite(a[i]):
            count += 1.0
    s[tid] = count
    total = block_sum(s, tid, THREADS)
    if tid == 0:
        out[0] = total


@cuda.jit
def min_max_kernel(a, out):
    """Thread t takes the min and max of a[t], a[t + THREADS], ... (a is not empty); the
    tree folds them; thread 0 writes out[0] = min, out[1] = max."""
    lo = cuda.shared.array(THREADS, float64)
    hi = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    low = float64(a[0])
    high = float64(a[0])
    for i in range(tid, a.size, cuda.blockDim.x):
        low = min(low, float64(a[i]))
        high = max(high, float64(a[i]))
    lo[tid] = low
    hi[tid] = high
    low, high = block_min_max(lo, hi, tid, THREADS)
    if tid == 0:
        out[0] = low
        out[1] = high


def count_nonfinite(a):
    """The number of NaN and infinite values in the float device array ``a`` (an int)."""
    out = empty(1, np.float64, like=a)
    launch_rows(count_nonfinite_kernel, 1, a.reshape(-1), out)
    return int(out.copy_to_host()[0])


def min_max(a):
    """``(min, max)`` of the non-empty device array ``a`` (integers exact up to 2^53)."""
    out = empty(2, np.float64, like=a)
    launch_rows(min_max_kernel, 1, a.reshape(-1), out)
    low, high = out.copy_to_host()
    kind = int if np.issubdtype(a.dtype, np.integer) else float
    return kind(low), kind(high)
