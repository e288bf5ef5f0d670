"""The helpers every test shares: random arrays, error assertions, gradient checks on one
thread, state snapshots, LeNet-5. Hypothesis strategies live in ``tests/strategies.py``."""

import contextlib
import re

import numba
import numpy as np
import pytest

from minidl import gradcheck, nn
from minidl.device import to_host
from minidl.gradcheck import numerical_gradient, relative_error

TOL = 1e-6  # worst element-wise error |a - n| / max(1, |a|, |n|), float64


def assert_gradient(analytic, f, x, tol=TOL, name="x"):
    """``analytic`` must equal the central-difference gradient of scalar ``f`` at ``x``.

    ``x`` must be a contiguous float64 array; ``f`` reads it (it is perturbed in place).
    """
    numeric = numerical_gradient(f, x)
    err = relative_error(analytic, numeric)
    assert err <= tol, f"d/d{name}: worst error {err:.3e} > {tol:g}\nanalytic:\n{analytic}\nnumeric:\n{numeric}"


def assert_loss_gradient(op, pred, target, args, reduction, seed=0):
    """An element-wise loss op's ``backward(pred, target, *args, reduction, dy)`` against
    central differences of its ``forward``: of the loss itself for "mean" and "sum", of
    <loss, dy> with a random upstream dy for "none"."""
    dy = random_dy(pred.shape, seed=seed) if reduction == "none" else None

    def f(v):
        loss = op.forward(v, target, *args, reduction)
        return np.sum(loss * dy) if reduction == "none" else loss

    assert_gradient(op.backward(pred, target, *args, reduction, dy), f, pred)


def randn(*shape, seed=0, dtype=np.float64):
    """A standard-normal array of ``shape`` (float64 unless told), reproducible by ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def labels(shape, K, seed=1):
    """Random class labels in [0, K) of ``shape``."""
    return np.random.default_rng(seed).integers(0, K, shape)


def one_or_pair(a, b):
    """``3`` when both sides agree (the int form of a layer argument), else ``(a, b)``."""
    return a if a == b else (a, b)


def output_size(H, K, S, P):
    """A sliding window's output size: floor((H + 2P - K) / S) + 1."""
    return (H + 2 * P - K) // S + 1


def batchnorm_inputs(shape, seed, dtype=np.float64):
    """Batch-norm inputs: x with a different mean and spread per channel; gamma, beta of shape (C,)."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    per_channel = (1, C) + (1,) * (len(shape) - 2)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, C).reshape(per_channel) + rng.uniform(-2, 2, C).reshape(
        per_channel
    )
    gamma, beta = rng.uniform(0.5, 2.0, C), rng.standard_normal(C)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)


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


def check_layer(layer, x, **kwargs):
    """``minidl.gradcheck.check_layer`` on one Numba thread (see ``one_numba_thread``)."""
    with one_numba_thread():
        return gradcheck.check_layer(layer, x, **kwargs)


def lenet5():
    """LeNet-5 as in tutorial 05 (LeCun et al., 1998, with ReLU and max pooling): (N, 1, 28, 28) -> (N, 10), 61706 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def assert_bias_grad_and_accumulation(layer, x, dy):
    """For a layer with a per-channel bias on (N, C, H, W) outputs: db = sum of dy over
    n, h, w; parameter gradients add up over backward calls until ``zero_grad()`` (as in
    PyTorch) while dx does not; ``zero_grad()`` clears them."""
    layer(x)
    dx1 = layer.backward(dy)
    w_grad, b_grad = layer.weight.grad.copy(), layer.bias.grad.copy()
    np.testing.assert_allclose(b_grad, dy.sum(axis=(0, 2, 3)), rtol=1e-13)
    dx2 = layer.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)
    np.testing.assert_allclose(layer.weight.grad, 2 * w_grad, rtol=1e-13)
    np.testing.assert_allclose(layer.bias.grad, 2 * b_grad, rtol=1e-13)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def raises(err, *fragments):
    """pytest.raises(err) whose message contains every fragment, in order."""
    return pytest.raises(err, match=".*".join(re.escape(f) for f in fragments))


def snapshot(model, optimizer=None):
    """Host copies of everything a failed call must leave as it was: the model's state
    dict, its gradients and, when given, the optimizer's state dict."""
    state = {key: value.copy() for key, value in model.state_dict().items()}
    state.update({f"grad:{key}": np.array(to_host(p.grad), copy=True) for key, p in model.named_parameters()})
    if optimizer is not None:
        state.update({f"opt:{key}": value for key, value in optimizer.state_dict().items()})
    return state


def assert_same_snapshot(before, after):
    """Two ``snapshot``s hold the same keys and bit-identical values (NaN equal to NaN)."""
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
