"""One Adam step on the GPU, in place (the equations: ``minidl/ops/adam.py``)."""
import math

from numba import cuda

from ._launch import launch


@cuda.jit
def adam_kernel(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2):
    """Thread i updates p[i] and its moments m[i], v[i] by Adam's equations."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        g = grad[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (1 - beta1) * g
        v[i] = beta2 * v[i] + (1 - beta2) * g * g
        m_hat = m[i] / bias_correction1
        v_hat = v[i] / bias_correction2
        p[i] = p[i] - lr * m_hat / (math.sqrt(v_hat) + eps)


def step(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, t):
    """Adam's step number ``t`` (from 1) on the device array ``p``, in place; m and v are
    the moments, updated in place. Scalars are taken in p's dtype. Returns p."""
    d = p.dtype.type
    launch(adam_kernel, p.size, p.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
           d(lr), d(beta1), d(beta2), d(eps), d(weight_decay), d(1 - beta1 ** t), d(1 - beta2 ** t))
    return p
