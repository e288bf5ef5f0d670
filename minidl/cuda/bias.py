"""A per-channel bias on the GPU (the math: ``minidl/ops/bias.py``): the addition one
thread per element, the gradient db[c] one block per channel (a shared-memory tree)."""

from numba import cuda, float64

from ..device import as_ncl, empty
from ._launch import THREADS, launch, launch_rows
from ._reduce import block_sum


@cuda.jit
def add_bias_kernel(y, b):
    """Thread q: element q = (n, c, l) of the (N, C, L) view, y[n, c, l] += b[c]."""
    N, C, L = y.shape
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[q // (C * L), q // L % C, q % L] += b[q // L % C]


@cuda.jit
def bias_backward_kernel(dy, db):
    """Block c: its THREADS threads add up channel c's N * L values of dy (thread t takes
    every THREADS-th one), the tree adds their sums, thread 0 writes db[c]."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, C, L = dy.shape
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        acc = 0.0
        for q in range(tid, N * L, cuda.blockDim.x):
            acc += dy[q // L, c, q % L]
        s[tid] = acc
        total = block_sum(s, tid, THREADS)
        if tid == 0:
            db[c] = total


def forward(y, b):
    """y += b along axis 1, in place (device arrays y (N, C) or (N, C, H, W), b (C,)). Returns y."""
    launch(add_bias_kernel, y.size, as_ncl(y), b)
    return y


def backward(dy):
    """db = dy summed over every axis but 1: (N, C) or (N, C, H, W) -> (C,)."""
    db = empty(dy.shape[1], dy.dtype, like=dy)
    launch_rows(bias_backward_kernel, dy.shape[1], as_ncl(dy), db)
    return db
