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

from numba import cuda


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
