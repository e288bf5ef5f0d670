"""One Adam step on the GPU, in place (the equations: ``minidl/ops/adam.py``). Each thread
calls the CPU file's ``adam_update`` for its elements (a Numba function that a CUDA kernel
can call), so the update is written once."""

from numba import cuda

from ..ops import adam
from ._launch import from_cpu, launch

adam_update = from_cpu(adam.adam_update)


@cuda.jit
def adam_kernel(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, correction1, correction2):
    """Thread i updates p[i] and its moments m[i], v[i] by Adam's (or AdamW's) equations."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i], m[i], v[i] = adam_update(
            p[i], grad[i], m[i], v[i], lr, beta1, beta2, eps, weight_decay, decoupled, correction1, correction2
        )


def step(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, t, decoupled=False):
    """Adam's step number ``t`` (from 1) on the device array ``p``, in place; m and v are
    the moments, updated in place; ``decoupled`` makes it AdamW's. Scalars are taken in
    p's dtype. Returns p."""
    d = p.dtype.type
    launch(
        adam_kernel,
        p.size,
        p.reshape(-1),
        grad.reshape(-1),
        m.reshape(-1),
        v.reshape(-1),
        d(lr),
        d(beta1),
        d(beta2),
        d(eps),
        d(weight_decay),
        bool(decoupled),
        d(1 - beta1**t),
        d(1 - beta2**t),
    )
    return p
