"""Smooth L1 loss on the GPU (the math: ``minidl/ops/smooth_l1.py``). Every element's loss
and slope come from the CPU file's ``smooth_l1_element``; the sum is one block's
shared-memory tree (``_reduce.py``), the gradient one thread per element."""

import numpy as np
from numba import cuda, float64

from ..device import empty
from ..ops import smooth_l1
from ..ops._loss import flat, reduced, upstream
from ._launch import THREADS, from_cpu, launch, launch_rows
from ._reduce import block_sum

smooth_l1_element = from_cpu(smooth_l1.smooth_l1_element)


@cuda.jit
def smooth_l1_forward_kernel(pred, target, beta, loss, total):
    """One block: thread t writes loss[i] for i = t, t + THREADS, ... and adds them up; the
    tree adds the THREADS partial sums; thread 0 writes total[0]."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, pred.size, cuda.blockDim.x):
        value, _ = smooth_l1_element(pred[i] - target[i], beta)
        loss[i] = value
        acc += value
    s[tid] = acc
    total_sum = block_sum(s, tid, THREADS)
    if tid == 0:
        total[0] = total_sum


@cuda.jit
def smooth_l1_backward_kernel(pred, target, beta, dl, per_element, dpred):
    """Thread i: dpred[i] = dl * d loss[i] / d pred[i]."""
    for i in range(cuda.grid(1), pred.size, cuda.gridsize(1)):
        _, slope = smooth_l1_element(pred[i] - target[i], beta)
        dpred[i] = (dl[i] if per_element else dl[0]) * slope


def forward(pred, target, beta=1.0, reduction="mean"):
    """As the CPU op, for device arrays: a float for "mean"/"sum", a device array for "none"."""
    shape = pred.shape
    pred, target = flat(pred, target)
    loss, total = empty(pred.shape, pred.dtype, like=pred), empty(1, np.float64, like=pred)
    launch_rows(smooth_l1_forward_kernel, 1, pred, target, pred.dtype.type(beta), loss, total)
    return reduced(loss, total, reduction, shape)


def backward(pred, target, beta=1.0, reduction="mean", dy=None):
    """d L / d pred on the device; ``dy`` is the upstream gradient for reduction "none"."""
    shape = pred.shape
    pred, target = flat(pred, target)
    dpred = empty(pred.shape, pred.dtype, like=pred)
    dl = upstream(dy, reduction, pred)
    launch(smooth_l1_backward_kernel, pred.size, pred, target, pred.dtype.type(beta), dl, reduction == "none", dpred)
    return dpred.reshape(shape)
