"""Binary cross-entropy on logits on the GPU (the math and why it never overflows:
``minidl/ops/bce_with_logits.py``). Every element's loss and slope come from the CPU
file's ``bce_element``; the sum is one block's shared-memory tree (``_reduce.py``), the
gradient one thread per element."""

import numpy as np
from numba import cuda, float64

from ..device import empty
from ..ops import bce_with_logits
from ..ops._loss import flat, reduced, upstream
from ._launch import THREADS, from_cpu, launch, launch_rows
from ._reduce import block_sum

bce_element = from_cpu(bce_with_logits.bce_element)


@cuda.jit
def bce_with_logits_forward_kernel(x, y, pos_weight, loss, total):
    """One block: thread t writes loss[i] for i = t, t + THREADS, ... and adds them up; the
    tree adds the THREADS partial sums; thread 0 writes total[0]."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    C = pos_weight.size
    acc = 0.0
    for i in range(tid, x.size, cuda.blockDim.x):
        value, _ = bce_element(x[i], y[i], pos_weight[i % C])
        loss[i] = value
        acc += value
    s[tid] = acc
    total_sum = block_sum(s, tid, THREADS)
    if tid == 0:
        total[0] = total_sum


@cuda.jit
def bce_with_logits_backward_kernel(x, y, pos_weight, dl, per_element, dx):
    """Thread i: dx[i] = dl * d loss[i] / d x[i]."""
    C = pos_weight.size
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _, slope = bce_element(x[i], y[i], pos_weight[i % C])
        dx[i] = (dl[i] if per_element else dl[0]) * slope


def forward(x, y, pos_weight=None, reduction="mean"):
    """As the CPU op, for device arrays: a float for "mean"/"sum", a device array for "none"."""
    shape = x.shape
    x, y = flat(x, y)
    loss, total = empty(x.shape, x.dtype, like=x), empty(1, np.float64, like=x)
    launch_rows(bce_with_logits_forward_kernel, 1, x, y, bce_with_logits._weights(pos_weight, x), loss, total)
    return reduced(loss, total, reduction, shape)


def backward(x, y, pos_weight=None, reduction="mean", dy=None):
    """d L / d x on the device; ``dy`` is the upstream gradient for reduction "none"."""
    shape = x.shape
    x, y = flat(x, y)
    dx = empty(x.shape, x.dtype, like=x)
    p, dl = bce_with_logits._weights(pos_weight, x), upstream(dy, reduction, x)
    launch(bce_with_logits_backward_kernel, x.size, x, y, p, dl, reduction == "none", dx)
    return dx.reshape(shape)
