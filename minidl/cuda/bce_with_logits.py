"""Binary cross-entropy on logits on the GPU (the math and why it never overflows:
``minidl/ops/bce_with_logits.py``). Every element's loss and slope come from the CPU
file's ``bce_element``; one thread per element writes its loss and its gradient; the sum
is ``_reduce.total_of`` (the shared-memory tree)."""

from numba import cuda

from ..device import empty
from ..ops import bce_with_logits
from ..reduction import flat, reduced, upstream
from ._launch import from_cpu, launch
from ._reduce import total_of

bce_element = from_cpu(bce_with_logits.bce_element)


@cuda.jit
def bce_with_logits_forward_kernel(x, y, pos_weight, loss):
    """Thread i: loss[i] (their sum is ``_reduce.total_of``)."""
    C = pos_weight.size
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        value, _ = bce_element(x[i], y[i], pos_weight[i % C])
        loss[i] = value


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
    loss = empty(x.shape, x.dtype, like=x)
    launch(bce_with_logits_forward_kernel, x.size, x, y, bce_with_logits._weights(pos_weight, x), loss)
    return reduced(loss, total_of(loss), reduction, shape)


def backward(x, y, pos_weight=None, reduction="mean", dy=None):
    """d L / d x on the device; ``dy`` is the upstream gradient for reduction "none"."""
    shape = x.shape
    x, y = flat(x, y)
    dx = empty(x.shape, x.dtype, like=x)
    p, dl = bce_with_logits._weights(pos_weight, x), upstream(dy, reduction, x)
    launch(bce_with_logits_backward_kernel, x.size, x, y, p, dl, reduction == "none", dx)
    return dx.reshape(shape)
