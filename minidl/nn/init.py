"""PyTorch's default initialisation, written out.

Weights (Linear, Conv2d, ConvTranspose2d) are Kaiming-uniform with ``a = sqrt(5)``:

    W ~ U(-bound, bound),  bound = gain * sqrt(3 / fan_in),  gain = sqrt(2 / (1 + a^2))

which for ``a = sqrt(5)`` is ``bound = 1 / sqrt(fan_in)``. ``fan_in`` is
``shape[1] * prod(shape[2:])`` (in-features for Linear (out, in); C_in * KH * KW for Conv2d;
PyTorch's rule, so C_out * KH * KW for ConvTranspose2d's (C_in, C_out, KH, KW)).
Biases are ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``. All draws come from minidl's global
generator, so ``minidl.seed(n)`` fixes them.
"""

import math

import numpy as np

from ..rng import get_rng


def fan_in(shape):
    """Number of inputs feeding one output unit: ``shape[1] * prod(shape[2:])``."""
    return int(shape[1] * np.prod(shape[2:], dtype=np.int64))


def uniform(shape, bound, dtype=np.float32):
    """``U(-bound, bound)`` samples of ``shape`` from the global generator."""
    return get_rng().uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, a=5**0.5, dtype=np.float32):
    """Kaiming-uniform weights: ``bound = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in)``."""
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in(shape)), dtype)


def bias_uniform(size, n_in, dtype=np.float32):
    """Biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    return uniform((size,), 1.0 / math.sqrt(n_in), dtype)
