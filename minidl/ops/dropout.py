r"""Inverted dropout: during training each element is kept with probability 1 - p and
scaled by 1 / (1 - p), or set to zero.

In symbols:

$$y_i = \frac{m_i\, x_i}{1 - p}, \quad m_i \sim \mathrm{Bernoulli}(1 - p), \qquad
  \mathbb{E}[y_i] = x_i, \qquad \frac{\partial L}{\partial x_i} = \frac{m_i}{1 - p}\, \frac{\partial L}{\partial y_i}$$

Forward, for every element i (any shape, flattened), with a keep-mask m[i] in {0, 1} drawn
once per forward pass (m[i] = 1 with probability 1 - p):

    y[i] = x[i] * m[i] / (1 - p)

The scaling keeps the expected value: E[y[i]] = x[i] * (1 - p) / (1 - p) = x[i], so at
evaluation time the layer is simply the identity. For p = 1 every m[i] is 0 and y = 0
(the scale 1 / (1 - p) is then taken as 0, never a division by zero).

Backward. For a fixed mask, y is linear in x with a diagonal Jacobian m[i] / (1 - p):

    dx[i] = dy[i] * m[i] / (1 - p)

which is the forward map itself applied to dy, so one kernel serves both.
"""

import numpy as np
from numba import njit

from ..device import empty


@njit(cache=True)
def masked_scale_kernel(a, mask, scale, out):
    """out[i] = a[i] * mask[i] * scale (forward on x, backward on dy; mask[i] is 0 or 1);
    out is overwritten."""
    for i in range(a.size):
        out[i] = a[i] * mask[i] * scale


def make_mask(shape, p, rng):
    """A boolean keep-mask of ``shape``: True with probability 1 - p, from numpy Generator
    ``rng`` (minidl's global generator, so ``minidl.seed`` fixes it).

    Uniform u in [0, 1) is kept when u >= p, so p = 0 keeps everything and p = 1 nothing.
    """
    return rng.random(shape) >= p


def _scale(p, dtype):
    """1 / (1 - p) in the array's dtype; 0 when p = 1 (nothing is kept)."""
    return dtype.type(0.0 if p >= 1 else 1.0 / (1.0 - p))


def _apply(a, mask, p):
    a = np.ascontiguousarray(a)
    out = empty(a.shape, a.dtype, like=a)
    mask = np.ascontiguousarray(mask, dtype=np.bool_).reshape(-1)
    masked_scale_kernel(a.reshape(-1), mask, _scale(p, a.dtype), out.reshape(-1))
    return out


def forward(x, mask, p):
    """y = x * mask / (1 - p). x: any shape, float; mask: keep-mask of x's shape (bool or 0/1)."""
    return _apply(x, mask, p)


def backward(dy, mask, p):
    """dx = dy * mask / (1 - p), with forward's mask. Same shape and dtype as dy."""
    return _apply(dy, mask, p)
