"""Smooth L1 loss on the GPU (the math: ``minidl/ops/smooth_l1.py``). Every element's loss
and slope come from the CPU file's ``smooth_l1_element``; one thread per element
writes its loss and its gradient; the sum is ``_reduce.total_of`` (the shared-memory tree)."""

from numba import cuda

from ..device import empty
from ..ops import smooth_l1
from ..reduction import flat, reduced, upstream
from ._launch import from_cpu, launch
from ._reduce import total_of

smooth_l1_element = from_cpu(smooth_l1.smooth_l1_element)


@cuda.jit
def smooth_l1_forward_kernel(pred, target, beta, loss):
    """Thread i: loss[i] (their sum is ``_reduce.total_of``)."""
    for i in range(cuda.grid(1), pred.size, cuda.gridsize(1)):
        value, _ = smooth_l1_element(pred[i] - target[i], beta)
        loss[i] = value


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
    loss = empty(pred.shape, pred.dtype, like=pred)
    launch(smooth_l1_forward_kernel, pred.size, pred, target, pred.dtype.type(beta), loss)
    return reduced(loss, total_of(loss), reduction, shape)


def backward(pred, target, beta=1.0, reduction="mean", dy=None):
    """d L / d pred on the device; ``dy`` is the upstream gradient for reduction "none"."""
    shape = pred.shape
    pred, target = flat(pred, target)
    dpred = empty(pred.shape, pred.dtype, like=pred)
    dl = upstream(dy, reduction, pred)
    launch(smooth_l1_backward_kernel, pred.size, pred, target, pred.dtype.type(beta), dl, reduction == "none", dpred)
    return dpred.reshape(shape)
