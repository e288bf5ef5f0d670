"""Shared helpers for the tests: gradient assertions, one-thread runs, LeNet-5."""
import contextlib

import numba
import numpy as np

from minidl import nn
from minidl.gradcheck import numerical_gradient, relative_error

TOL = 1e-6  # worst element-wise error |a - n| / max(1, |a|, |n|), float64


def assert_gradient(analytic, f, x, tol=TOL, name="x"):
    """``analytic`` must equal the central-difference gradient of scalar ``f`` at ``x``.

    ``x`` must be a contiguous float64 array; ``f`` reads it (it is perturbed in place).
    """
    numeric = numerical_gradient(f, x)
    err = relative_error(analytic, numeric)
    assert err <= tol, f"d/d{name}: worst error {err:.3e} > {tol:g}\nanalytic:\n{analytic}\nnumeric:\n{numeric}"


def random_dy(shape, seed=0):
    """A random float64 upstream gradient (never all ones)."""
    return np.random.default_rng(seed).standard_normal(shape)


@contextlib.contextmanager
def one_numba_thread():
    """Run the kernels on one Numba thread: a gradient check calls them hundreds of times on
    tiny arrays, where waking the thread pool costs more than the work (and on a busy
    shared machine, far more). The threaded paths are compared with PyTorch on batches."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def lenet5():
    """LeNet-5 as in DESIGN.md: (N, 1, 28, 28) -> (N, 10), 61706 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
