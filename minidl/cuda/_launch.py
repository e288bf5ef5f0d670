"""How a kernel is launched: blocks of threads, a grid of blocks, a grid-stride loop.

A CUDA kernel is one function run by many threads at once. Threads come in blocks (up to
1024 threads that share fast on-chip memory and can wait for each other with
``cuda.syncthreads()``); blocks form the grid. Thread ``t`` of block ``b`` is global thread

    i = b * blockDim + t          (``cuda.grid(1)``)

and the grid has ``gridDim * blockDim`` threads (``cuda.gridsize(1)``). Every kernel in
minidl is written with a GRID-STRIDE LOOP,

    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        y[i] = ...                 # element i

so that any grid computes every element exactly once: with as many threads as elements
each does one, with fewer each does several. That lets the launch below pick the grid
freely: large on a GPU, tiny under the simulator, where each thread is a Python thread
(about half a millisecond to start) and a launch of 64 threads costs what one of a million
elements would.

Kernels that work on rows (a channel's statistics, a matrix tile) stride over the rows by
blocks instead: ``for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x)``.
"""

import math

import numba
from numba import cuda, types

from ..device import is_device_array

SIMULATOR = bool(numba.cuda.config.ENABLE_CUDASIM)

THREADS = 8 if SIMULATOR else 256  # threads per block of 1-D kernels and reductions (a power of 2)
TILE = 8 if SIMULATOR else 16  # the matrix product's tile: TILE x TILE threads, TILE x TILE shared tiles
MAX_BLOCKS = 2 if SIMULATOR else 4096  # a grid-stride loop covers the rest

# Every launch's argument types, so that tests/cuda/test_ptx.py compiles each kernel for
# exactly the signatures it is launched with: {(module, kernel name): {signature, ...}}.
launched = {}


def from_cpu(function):
    """A CPU file's ``@njit`` function of one element or cell (``window_max``, ``sgd_update``,
    ...) for a CUDA kernel to call, so that its math is written once. On a GPU, Numba
    compiles it for the device; the simulator cannot hand its arrays to compiled code, so
    there the kernel calls the function's plain Python (``py_func``)."""
    return getattr(function, "py_func", function) if SIMULATOR else function


def blocks_for(n, per_block):
    """Blocks to cover ``n`` items at ``per_block`` per block, at most MAX_BLOCKS."""
    return max(1, min(MAX_BLOCKS, math.ceil(n / per_block)))


def numba_type(value):
    """The Numba type a kernel argument is compiled for (arrays: dtype, ndim, layout)."""
    if is_device_array(value):
        layout = "C" if value.flags["C_CONTIGUOUS"] else "A"
        return types.Array(numba.from_dtype(value.dtype), value.ndim, layout)
    return numba.typeof(value)


def _record(kernel, args):
    key = (kernel.py_func.__module__, kernel.py_func.__name__)
    launched.setdefault(key, set()).add(tuple(numba_type(a) for a in args))


def launch(kernel, n, *args):
    """Run ``kernel(*args)`` over ``n`` elements: 1-D blocks of THREADS threads, enough
    blocks for one thread per element (at most MAX_BLOCKS; the grid-stride loop does the
    rest)."""
    _record(kernel, args)
    kernel[blocks_for(n, THREADS), THREADS](*args)


def launch_rows(kernel, rows, *args):
    """Run ``kernel(*args)`` with one block of THREADS threads per row (a channel, a
    sample), at most MAX_BLOCKS blocks striding over the rows."""
    _record(kernel, args)
    kernel[blocks_for(rows, 1), THREADS](*args)


def launch_blocks(kernel, blocks, *args):
    """Run ``kernel(*args)`` with exactly ``blocks`` blocks of THREADS threads."""
    _record(kernel, args)
    kernel[blocks, THREADS](*args)


def launch_tiles(kernel, tiles, *args):
    """Run ``kernel(*args)`` with TILE x TILE threads per block, one block per output tile
    (at most MAX_BLOCKS, striding over the tiles)."""
    _record(kernel, args)
    kernel[blocks_for(tiles, 1), (TILE, TILE)](*args)


def sync():
    """Wait for every launched kernel to finish (for timing)."""
    cuda.synchronize()
