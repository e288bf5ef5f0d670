r"""One Adam step on one parameter, in place (Kingma & Ba, 2015; PyTorch's
``torch.optim.Adam``), element by element. With betas (beta1, beta2), eps, weight decay
lambda, learning rate lr, at step t:

In symbols:

$$g = \frac{\partial L}{\partial p} + \lambda p, \quad
  m \leftarrow \beta_1 m + (1 - \beta_1)\, g, \quad
  v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2, \quad
  p \leftarrow p - \eta\, \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}$$

    g     = grad[i] + lambda * p[i]                (L2 weight decay, added to the gradient)
    m[i]  = beta1 * m[i] + (1 - beta1) * g         (first moment, m starts at 0)
    v[i]  = beta2 * v[i] + (1 - beta2) * g * g     (second moment, v starts at 0)
    m_hat = m[i] / (1 - beta1^t)                   (bias corrections: m and v start at 0,
    v_hat = v[i] / (1 - beta2^t)                    so the early averages are too small)
    p[i]  = p[i] - lr * m_hat / (sqrt(v_hat) + eps)

AdamW (``decoupled=True``; Loshchilov & Hutter, 2019) takes the weight decay out of the
gradient and applies it to the weights first:

$$p \leftarrow p\,(1 - \eta \lambda), \quad g = \frac{\partial L}{\partial p}, \quad \text{then Adam's } m, v, p \text{ updates}$$

    p[i]  = p[i] * (1 - lr * lambda)               (decoupled decay: the weights shrink)
    g     = grad[i]                                (and the gradient stays as it is)

``minidl/optim.py`` holds m, v and t and calls this for every parameter.
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, correction1, correction2):
    """The update above for one element: its weight p, gradient g and moments m, v in, the
    new (p, m, v) out; correction1 = 1 - beta1^t and correction2 = 1 - beta2^t are the bias
    corrections. The CUDA kernel calls this same function, one thread per element.

    Numbers in and out, not the arrays and an index: inlined into the CPU loop, a function
    that took the four arrays made Numba count a reference to each of them at every element
    (measured on 2 cores, one step on LeNet-5's 61 706 float32 parameters: 1.45 ms that way,
    0.48 ms this way)."""
    if decoupled:  # AdamW
        p = p * (1 - lr * weight_decay)
    else:  # Adam: the L2 penalty's gradient
        g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / correction1
    v_hat = v / correction2
    return p - lr * m_hat / (math.sqrt(v_hat) + eps), m, v


@njit(cache=True)
def adam_kernel(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, correction1, correction2):
    """The update for every element of the flat arrays (p, m, v in place)."""
    for i in range(p.size):
        p[i], m[i], v[i] = adam_update(
            p[i], grad[i], m[i], v[i], lr, beta1, beta2, eps, weight_decay, decoupled, correction1, correction2
        )


def step(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, t, decoupled=False):
    """Adam's step number ``t`` (from 1) on ``p``, in place; m and v (p's shape) are the
    moments, updated in place; ``decoupled`` makes it AdamW's. Scalars are taken in p's
    dtype. Returns p."""
    d = p.dtype.type
    adam_kernel(
        p.reshape(-1),
        np.ascontiguousarray(grad).reshape(-1),
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
