"""One global random generator, so that ``minidl.seed(n)`` makes a whole run reproducible.

Everything random in minidl (weight initialisation, dropout masks, data shuffling when no
seed is given) draws from ``get_rng()``. ``seed(n)`` replaces it with a fresh
``numpy.random.Generator(PCG64(n))``.

``get_state()`` / ``set_state(state)`` save and restore the generator, which is how the
gradient checker replays the same dropout mask for every finite-difference evaluation.
"""

import numpy as np

_rng = np.random.default_rng()


def seed(n):
    """Seed minidl's global generator (weights, dropout masks, shuffling)."""
    global _rng
    from .nn.checks import integer  # here, not at the top: minidl.nn imports this module

    _rng = np.random.default_rng(integer("minidl.seed", "n", n, 0))


def get_rng():
    """The global ``numpy.random.Generator``."""
    return _rng


def get_state():
    """A snapshot of the global generator's state (a dict)."""
    return _rng.bit_generator.state


def set_state(state):
    """Restore a snapshot taken by ``get_state()``."""
    _rng.bit_generator.state = state
