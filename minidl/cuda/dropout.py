"""Inverted dropout on the GPU (the math: ``minidl/ops/dropout.py``).

The keep-mask comes from ``numba.cuda.random``: every thread of the mask kernel owns one
xoroshiro128+ generator (its own stream of random numbers) and draws a uniform u for each
element it covers, keeping the element when u >= p. The generators are seeded from the
generator handed in (minidl's global one), so ``minidl.seed(n)`` makes the masks
reproducible; they are not the CPU's masks (another generator), but follow the same law.
The mask stays on the device, for backward.
"""

import math
import warnings

import numpy as np
from numba import NumbaWarning, cuda
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float64

from ..device import empty
from ..ops.dropout import _scale
from ._launch import MAX_BLOCKS, THREADS, blocks_for, launch, launch_blocks

MASK_BLOCKS = min(MAX_BLOCKS, 32)  # generators to seed per mask: at most 32 blocks' worth


@cuda.jit
def mask_kernel(states, p, mask):
    """Thread i (generator i) draws u for elements i, i + gridsize, ...: mask = (u >= p)."""
    i0 = cuda.grid(1)
    for i in range(i0, mask.size, cuda.gridsize(1)):
        mask[i] = xoroshiro128p_uniform_float64(states, i0) >= p


@cuda.jit
def masked_scale_kernel(a, mask, scale, out):
    """Thread i: out[i] = a[i] * mask[i] * scale."""
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * mask[i] * scale


def make_mask(shape, p, rng):
    """A boolean device keep-mask of ``shape``: True with probability 1 - p; the generators
    are seeded by one draw from the numpy Generator ``rng``."""
    size = math.prod(shape)
    blocks = min(blocks_for(size, THREADS), MASK_BLOCKS)
    with warnings.catch_warnings():  # the simulator seeds the generators in object mode, noisily
        warnings.simplefilter("ignore", NumbaWarning)
        states = create_xoroshiro128p_states(blocks * THREADS, seed=int(rng.integers(2**63)))
    mask = empty(shape, np.bool_, like=states)
    launch_blocks(mask_kernel, blocks, states, float(p), mask.reshape(-1))  # one thread per generator
    return mask


def _apply(a, mask, p):
    out = empty(a.shape, a.dtype, like=a)
    launch(masked_scale_kernel, a.size, a.reshape(-1), mask.reshape(-1), _scale(p, a.dtype), out.reshape(-1))
    return out


def forward(x, mask, p):
    """y = x * mask / (1 - p), with the device keep-mask of ``make_mask``."""
    return _apply(x, mask, p)


def backward(dy, mask, p):
    """dx = dy * mask / (1 - p), with forward's mask."""
    return _apply(dy, mask, p)
