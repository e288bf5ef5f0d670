"""Shared assertions for the gradient tests."""
import numpy as np

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
