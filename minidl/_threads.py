"""One threading policy for the whole engine: minidl's threads, single-threaded BLAS.

A matrix product can be parallelised in two places: inside BLAS (OpenBLAS starts its own
threads) or outside it (minidl cuts the batch into chunks, one thread per chunk, every
chunk calling BLAS on one thread). Doing both at once makes the two thread pools fight over
the same cores: OpenBLAS's threads keep spinning after a product, and a parallel region
that starts right after one was measured to stall for ~8 ms on 2 cores; with BLAS left
multithreaded, the convolution of a (64, 32, 16, 16) batch took 28 ms instead of 16 ms.

minidl's policy: **parallelism comes from minidl** (``run_chunks``: the batch, the
channels or the planes cut into T chunks, run side by side) and **every BLAS call runs on
one thread**. ``single_threaded_blas()`` sets that limit, once, for every BLAS library
loaded in the process (NumPy's and SciPy's; Numba's ``np.dot`` calls SciPy's). It needs
``threadpoolctl`` (installed with scikit-learn) and does nothing without it. ``import
minidl`` calls it, so the policy holds for the whole process (including NumPy's own matrix
products). T is Numba's thread count (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``).

Why not Numba's own ``parallel=True`` and ``prange``? They do the same thing, but a
parallel kernel is compiled three times (the loop body as a "gufunc", its wrapper and the
kernel), which made the demo's first run spend 18.9 s compiling instead of 8.2 s (measured
on 2 cores, ``benchmarks/compile_cost.py``). A chunk kernel here is a plain serial
``@njit(nogil=True)`` function: ``nogil`` lets it run while another thread runs the next
chunk, and a learner reads one ordinary loop.
"""

import os
import queue
import threading
import time

import numba
import numpy as np
from numba.core import types

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
    """How many pieces T to cut N rows (images, channels, planes) into for ``run_chunks``:
    one per thread, at most N (none empty). Chunk t of T is rows t*N//T .. (t+1)*N//T - 1."""
    return max(1, min(numba.get_num_threads(), N))


# --- the helper threads ---------------------------------------------------------------------
#
# Handing a chunk to a thread that sleeps is slow on a virtual machine: the sleeper takes
# ~0.15 ms to wake up (measured on 2 vCPUs, against 6 us for Numba's OpenMP threads, which
# spin before they sleep), and a LeNet-5 step hands over ~15 chunks. Two things cost a
# sleep: a queue with nothing in it, and the GIL held by the other thread. So:
#   - after each chunk a helper polls, without the GIL, for SPIN_US microseconds, until the
#     caller posts the next chunk (``_finish_and_wait``), and the caller polls the same way
#     until the helpers have finished (``_wait``); only after that do they block on a queue;
#   - each takes the GIL only while the other is in compiled code: the caller holds it to
#     post the chunk and to start its own (Numba's dispatch), so a helper that sees a post
#     waits HANDOVER_US more before it takes the GIL, and a helper counts a chunk as
#     finished from inside ``_finish_and_wait``, after it has let the GIL go.
# The queues carry the work and the results; the counters only say when to look. The clock
# is libc's clock_gettime, declared to Numba by its name (``types.ExternalFunction``: LLVM
# finds the symbol in the process, so the compiled code can be cached); it is a call the
# compiled loop cannot see into, so the loop reads the counters afresh on every round.

# int clock_gettime(clockid_t clock, struct timespec *ts), POSIX; the pointer as an integer
_clock_gettime = types.ExternalFunction("clock_gettime", types.int32(types.int32, types.intp))
CLOCK_MONOTONIC = time.CLOCK_MONOTONIC  # the platform's number for that clock
SPIN_US = 2000  # how long a thread polls before it sleeps
HANDOVER_US = 5  # how long a helper lets the caller keep the GIL after a post (Numba's
# dispatch of a 14-argument kernel takes ~1 us; measured per handed-over chunk on 2 vCPUs:
# 16 us with no pause, where the two threads collide on the GIL, 10 us with 5 us, 30 us
# with 20 us; Numba's own parallel=True: 4-6 us)


@numba.njit(cache=True, nogil=True, inline="always")
def _now_us(ts):
    """The monotonic clock in microseconds (ts: this thread's int64 scratch of 2, the
    timespec)."""
    _clock_gettime(CLOCK_MONOTONIC, ts.ctypes.data)
    return ts[0] * 1_000_000 + ts[1] // 1000


@numba.njit(cache=True, nogil=True)
def _wait(counts, targets, us, ts):
    """The caller: poll until counts[i] >= targets[i] for every i, for at most ``us``
    microseconds; True if that happened."""
    end = _now_us(ts) + us
    while True:
        reached = True
        for i in range(counts.size):
            if counts[i] < targets[i]:
                reached = False
        if reached:
            return True
        if _now_us(ts) >= end:
            return False


@numba.njit(cache=True, nogil=True)
def _finish_and_wait(finished, posted, i, ts):
    """Helper i: count its chunk as finished, poll for the next one for SPIN_US and, if it
    came, pause HANDOVER_US (the caller is starting its own chunk and holds the GIL)."""
    finished[i] += 1
    end = _now_us(ts) + SPIN_US
    while posted[i] == finished[i]:  # no new chunk yet
        if _now_us(ts) >= end:
            return
    end = _now_us(ts) + HANDOVER_US
    while _now_us(ts) < end:
        pass


MAX_THREADS = numba.config.NUMBA_NUM_THREADS  # the most numba.set_num_threads allows
MAX_HELPERS = max(1, MAX_THREADS - 1)  # (arrays of at least one entry)
_inboxes = []  # helper i's queue of chunks to run
_results = []  # helper i's queue of finished chunks (None, or the error it raised)
_posted = np.zeros(MAX_HELPERS, np.int64)  # chunks handed to helper i (written by the caller)
_finished = np.zeros(MAX_HELPERS, np.int64)  # chunks helper i has finished (written by helper i)
_timespecs = np.zeros((MAX_HELPERS + 1, 2), np.int64)  # the clock's scratch: the caller's, helper i's
_lock = threading.Lock()  # one run_chunks at a time (the counters have one writer each)


def _serve(i):
    """Helper i: run the chunks it is given, forever, and report each one."""
    inbox, results = _inboxes[i], _results[i]
    while True:
        kernel, t, T, args = inbox.get()
        try:
            kernel(t, T, *args)
        except BaseException as error:  # handed to the caller, who raises it
            results.put(error)
        else:
            results.put(None)
        _finish_and_wait(_finished, _posted, i, _timespecs[i + 1])


def _start_helpers(k):
    """Start helper threads until there are k (they live as long as the process)."""
    while len(_inboxes) < k:
        _inboxes.append(queue.SimpleQueue())
        _results.append(queue.SimpleQueue())
        name = f"minidl-{len(_inboxes)}"
        threading.Thread(target=_serve, args=(len(_inboxes) - 1,), name=name, daemon=True).start()


def _forget_helpers():
    """In a forked child: none of the parent's threads exist there (and the lock may have
    been held by one of them)."""
    global _lock
    _lock = threading.Lock()
    _inboxes.clear()
    _results.clear()
    _posted[:] = 0
    _finished[:] = 0


os.register_at_fork(after_in_child=_forget_helpers)


def run_chunks(kernel, T, *args):
    """Call ``kernel(t, T, *args)`` for every chunk t < T, side by side: chunk 0 on the
    calling thread, chunks 1 .. T-1 on helper threads; return when all are done (re-raising
    the first error). ``kernel`` is an ``@njit(nogil=True)`` function that does chunk t of
    T of its work and writes only its own part of the output arrays in ``args``.

    With ``NUMBA_DISABLE_JIT=1`` the kernel is plain Python, which holds the GIL: then the
    chunks run one after the other on the calling thread, where a debugger can follow them.
    """
    if not 1 <= T <= MAX_THREADS:
        raise ValueError(f"run_chunks: T must be between 1 and {MAX_THREADS} (NUMBA_NUM_THREADS), got {T}")
    if T == 1 or numba.config.DISABLE_JIT:
        for t in range(T):
            kernel(t, T, *args)
        return
    with _lock:
        _start_helpers(T - 1)
        for t in range(1, T):
            _inboxes[t - 1].put((kernel, t, T, args))
            _posted[t - 1] += 1
        try:
            kernel(0, T, *args)
        finally:  # the helpers write into the caller's arrays: wait for them, even on an error
            _wait(_finished[: T - 1], _posted[: T - 1], SPIN_US, _timespecs[0])
            errors = [_results[i].get() for i in range(T - 1)]
    for error in errors:
        if error is not None:
            raise error


def blas_threads(n=None):
    """A context in which BLAS may use ``n`` threads (Numba's thread count when None), to
    measure what the machine's BLAS can do (``minidl.profiler.gemm_peak``, the benchmarks);
    minidl's own kernels never run inside it."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n or numba.get_num_threads(), user_api="blas")
