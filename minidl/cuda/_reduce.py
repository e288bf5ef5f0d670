"""The shared-memory tree sum: how the threads of one block add up their partial sums.

Each of the THREADS threads of a block first adds up its share of the values (a
block-stride loop), then writes that partial sum into a shared array ``s`` (one slot per
thread; shared memory is visible to the whole block). Halving steps then fold the upper
half onto the lower half until slot 0 holds the total:

    step 4:   s[0] += s[4]   s[1] += s[5]   s[2] += s[6]   s[3] += s[7]
    step 2:   s[0] += s[2]   s[1] += s[3]
    step 1:   s[0] += s[1]                           -> s[0] = the block's sum

log2(THREADS) steps instead of THREADS - 1 additions by one thread, and the order of the
additions is fixed, so the result is the same at every run (atomics would add in whatever
order the threads arrive). ``cuda.syncthreads()`` between the steps makes every thread wait
until the step is done. Warp shuffles would be faster, but the simulator does not have
them. Sums are kept in float64, as on the CPU.
"""

import numpy as np
from numba import cuda, float64

from ..device import empty
from ._launch import THREADS, launch_rows


@cuda.jit(device=True)
def block_sum(s, tid, n_threads):
    """Fold s[0 .. n_threads) onto s[0] by halving steps (n_threads a power of 2) and
    return the total to every thread of the block (all of them must call it). The shared
    array may be written again as soon as it returns."""
    cuda.syncthreads()
    step = n_threads // 2
    while step > 0:
        if tid < step:
            s[tid] += s[tid + step]
        cuda.syncthreads()
        step //= 2
    total = s[0]
    cuda.syncthreads()  # everyone has read s[0] before anyone writes s again
    return total


@cuda.jit(device=True)
def block_min_max(lo, hi, tid, n_threads):
    """The same halving steps with min and max instead of +: fold lo onto lo[0] (the
    smallest) and hi onto hi[0] (the largest); return both to every thread."""
    cuda.syncthreads()
    step = n_threads // 2
    while step > 0:
        if tid < step:
            lo[tid] = min(lo[tid], lo[tid + step])
            hi[tid] = max(hi[tid], hi[tid + step])
        cuda.syncthreads()
        step //= 2
    low, high = lo[0], hi[0]
    cuda.syncthreads()
    return low, high


@cuda.jit
def sum_kernel(a, total):
    """One block: total[0] = the sum of the flat array a (each thread's share, then the tree)."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, a.size, cuda.blockDim.x):
        acc += a[i]
    s[tid] = acc
    a_sum = block_sum(s, tid, THREADS)
    if tid == 0:
        total[0] = a_sum


def total_of(a):
    """The sum of the device array ``a`` (any shape) as a 1-element float64 device array."""
    total = empty(1, np.float64, like=a)
    launch_rows(sum_kernel, 1, a.reshape(-1), total)
    return total
