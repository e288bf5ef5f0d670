"""One threading policy for the whole engine: Numba threads, single-threaded BLAS.

A matrix product can be parallelised in two places: inside BLAS (OpenBLAS starts its own
threads) or outside it (a Numba ``prange`` over the batch, every iteration calling BLAS
on one thread). Doing both at once makes the two thread pools fight over the same cores:
OpenBLAS's threads keep spinning after a product, and a Numba parallel region that starts
right after one was measured to stall for ~8 ms on 2 cores; with BLAS left multithreaded,
the convolution of a (64, 32, 16, 16) batch took 28 ms instead of 16 ms.

minidl's policy: **parallelism comes from Numba** (``prange`` over samples, channels or
planes) and **every BLAS call runs on one thread**. ``single_threaded_blas()`` sets that
limit, once, for every BLAS library loaded in the process (NumPy's and SciPy's; Numba's
``np.dot`` calls SciPy's). It needs ``threadpoolctl`` (installed with scikit-learn) and
does nothing without it. ``import minidl`` calls it, so the policy holds for the whole
process (including NumPy's own matrix products).
"""

_applied = False


def single_threaded_blas():
    """Limit every loaded BLAS library to one thread (idempotent; returns nothing)."""
    global _applied
    if _applied:
        return
    _applied = True
    # Numba's np.dot calls the BLAS behind scipy.linalg.cython_blas, and Numba loads that
    # library lazily (at the first product): load it now so that the limit reaches it.
    import scipy.linalg.cython_blas  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


def chunks(N):
    """How many pieces to cut N rows (images, samples) into for a ``prange`` over chunks,
    each calling single-threaded BLAS: one per Numba thread, at most N (none empty)."""
    import numba

    return max(1, min(numba.get_num_threads(), N))


def blas_threads(n=None):
    """A context in which BLAS may use ``n`` threads (Numba's thread count when None), to
    measure what the machine's BLAS can do (``minidl.profiler.gemm_peak``, the benchmarks);
    minidl's own kernels never run inside it."""
    import contextlib

    import numba

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n or numba.get_num_threads(), user_api="blas")
