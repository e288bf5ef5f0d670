"""One SGD step on the GPU, in place (the equations: ``minidl/ops/sgd.py``). Each thread
calls the CPU file's ``sgd_update`` for its elements: a Numba function that a CUDA kernel
can call, so the update is written once."""

from numba import cuda

from ..ops import sgd
from ._launch import from_cpu, launch

sgd_update = from_cpu(sgd.sgd_update)


@cuda.jit
def sgd_kernel(p, grad, buf, lr, momentum, weight_decay, nesterov, first_step):
    """Thread i updates p[i] (and the velocity buf[i]) by PyTorch's SGD equations."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        sgd_update(p, grad, buf, i, lr, momentum, weight_decay, nesterov, first_step)


def step(p, grad, buf, lr, momentum, weight_decay, nesterov, first_step):
    """Update the device array ``p`` in place from ``grad``; ``buf`` is the velocity (None
    when momentum is 0). Scalars are taken in p's dtype. Returns p."""
    t = p.dtype.type
    buf = grad if buf is None else buf  # momentum 0: never read nor written
    launch(
        sgd_kernel,
        p.size,
        p.reshape(-1),
        grad.reshape(-1),
        buf.reshape(-1),
        t(lr),
        t(momentum),
        t(weight_decay),
        bool(nesterov),
        bool(first_step),
    )
    return p
