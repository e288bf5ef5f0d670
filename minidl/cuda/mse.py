"""Mean squared error on the GPU (the math: ``minidl/ops/mse.py``): the sum is one block's
shared-memory tree (``_reduce.py``), the gradient one thread per element."""

import numpy as np
from numba import cuda, float64

from ..device import as_array_like, empty
from ._launch import THREADS, launch, launch_rows
from ._reduce import block_sum


@cuda.jit
def mse_forward_kernel(pred, target, loss):
    """One block: thread t adds (pred[i] - target[i])^2 for i = t, t + THREADS, ...; the
    tree adds the THREADS partial sums; thread 0 writes loss[0] = sum / M."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, pred.size, cuda.blockDim.x):
        d = pred[i] - target[i]
        acc += d * d
    s[tid] = acc
    total = block_sum(s, tid, THREADS)
    if tid == 0:
        loss[0] = total / pred.size


@cuda.jit
def mse_backward_kernel(pred, target, dpred):
    """Thread i: dpred[i] = 2 / M * (pred[i] - target[i])."""
    M = pred.size
    for i in range(cuda.grid(1), M, cuda.gridsize(1)):
        dpred[i] = 2 * (pred[i] - target[i]) / M


def _flat(pred, target):
    """pred and target as flat device arrays, the target in pred's dtype."""
    return pred.reshape(-1), as_array_like(target, like=pred, dtype=pred.dtype).reshape(-1)


def forward(pred, target):
    """L = mean((pred - target)^2) of two device arrays of one shape. Returns a float."""
    loss = empty(1, np.float64, like=pred)
    launch_rows(mse_forward_kernel, 1, *_flat(pred, target), loss)
    return float(loss.copy_to_host()[0])


def backward(pred, target):
    """dL/dpred = 2 (pred - target) / M, of pred's shape and dtype."""
    dpred = empty(pred.shape, pred.dtype, like=pred)
    launch(mse_backward_kernel, pred.size, *_flat(pred, target), dpred.reshape(-1))
    return dpred
