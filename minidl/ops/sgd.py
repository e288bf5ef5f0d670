r"""One SGD step on one parameter, in place: PyTorch's ``torch.optim.SGD`` update (with
dampening 0), element by element. With momentum mu, weight decay lambda, learning rate lr:

In symbols:

$$g = \frac{\partial L}{\partial p} + \lambda p, \qquad b \leftarrow \mu b + g \ \ (b = g \text{ at the first step}), \qquad
  p \leftarrow p - \eta \cdot \begin{cases} g + \mu b & \text{Nesterov} \\ b & \text{otherwise} \end{cases}$$

    g      = grad[i] + lambda * p[i]              (L2 weight decay)
    buf[i] = g                       on the first step (the velocity starts at g)
    buf[i] = mu * buf[i] + g         on later steps
    g      = g + mu * buf[i]         with Nesterov momentum (a look-ahead), else g = buf[i]
    p[i]   = p[i] - lr * g

With mu = 0 there is no velocity and the step is p[i] = p[i] - lr * g (``buf`` is not
used). ``minidl/optim.py`` holds the buffers and calls this for every parameter.
"""

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def sgd_update(p, grad, buf, i, lr, momentum, weight_decay, nesterov, first_step):
    """The update above for element i (p[i] and buf[i] in place). The CUDA kernel calls
    this same function, one thread per element."""
    g = grad[i] + weight_decay * p[i]
    if momentum != 0:
        if first_step:
            buf[i] = g
        else:
            buf[i] = momentum * buf[i] + g
        if nesterov:
            g = g + momentum * buf[i]
        else:
            g = buf[i]
    p[i] = p[i] - lr * g


@njit(cache=True)
def sgd_kernel(p, grad, buf, lr, momentum, weight_decay, nesterov, first_step):
    """The update for every element of the flat arrays p, grad, buf (p and buf in place)."""
    for i in range(p.size):
        sgd_update(p, grad, buf, i, lr, momentum, weight_decay, nesterov, first_step)


def step(p, grad, buf, lr, momentum, weight_decay, nesterov, first_step):
    """Update ``p`` in place from ``grad``; ``buf`` (p's shape, updated in place) is the
    velocity, None when momentum is 0. Scalars are taken in p's dtype. Returns p."""
    t = p.dtype.type
    buf = grad if buf is None else buf  # momentum 0: never read nor written
    sgd_kernel(
        p.reshape(-1),
        np.ascontiguousarray(grad).reshape(-1),
        buf.reshape(-1),
        t(lr),
        t(momentum),
        t(weight_decay),
        bool(nesterov),
        bool(first_step),
    )
    return p
