"""Linear y = x w^T + b: every gradient against central differences, the adjoint
identities that tie forward and backward together, dtypes and layouts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import reference_loops
from minidl._threads import chunks
from minidl.ops import linear
from tests.helpers import assert_gradient, random_dy
from tests.strategies import seeds

sizes = st.integers(1, 5)


def draw(N, IN, OUT, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, IN)).astype(dtype)
    w = rng.standard_normal((OUT, IN)).astype(dtype)
    b = rng.standard_normal(OUT).astype(dtype)
    return x, w, b


@given(N=sizes, IN=sizes, OUT=sizes, bias=st.booleans(), seed=seeds)
def test_backward_matches_central_differences(N, IN, OUT, bias, seed):
    x, w, b = draw(N, IN, OUT, seed)
    b = b if bias else None
    dy = random_dy((N, OUT), seed + 1)
    dx, dw, db = linear.backward(dy, x, w, has_bias=bias)

    def f(x_, w_, b_):
        return np.sum(linear.forward(x_, w_, b_) * dy)

    assert_gradient(dx, lambda v: f(v, w, b), x, name="x")
    assert_gradient(dw, lambda v: f(x, v, b), w, name="w")
    if bias:
        assert_gradient(db, lambda v: f(x, w, v), b, name="b")
    else:
        assert db is None


@given(N=sizes, IN=sizes, OUT=sizes, seed=seeds)
def test_adjoint_identities(N, IN, OUT, seed):
    """y is linear in each of x, w, b, so <dy, y> = <dx, x> = <dw, w> (without bias) and
    <dy, x w^T + b> = <dx, x> + <db, b>."""
    x, w, b = draw(N, IN, OUT, seed)
    dy = random_dy((N, OUT), seed + 1)
    dx, dw, db = linear.backward(dy, x, w, has_bias=True)
    inner = np.sum(dy * linear.forward(x, w))
    np.testing.assert_allclose(np.sum(dx * x), inner, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.sum(dw * w), inner, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.sum(dy * linear.forward(x, w, b)), inner + np.sum(db * b), rtol=1e-10, atol=1e-12)


@given(N=sizes, IN=sizes, OUT=sizes, seed=seeds)
def test_matches_the_matrix_formulas(N, IN, OUT, seed):
    x, w, b = draw(N, IN, OUT, seed)
    dy = random_dy((N, OUT), seed + 1)
    dx, dw, db = linear.backward(dy, x, w)
    np.testing.assert_allclose(linear.forward(x, w, b), x @ w.T + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dy @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dy.T @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, dy.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_a_hand_computed_example():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    b = np.array([0.5, 0.0, -1.0])
    np.testing.assert_array_equal(linear.forward(x, w, b), [[1.5, 2.0, -2.0]])
    dx, dw, db = linear.backward(np.array([[1.0, 2.0, 3.0]]), x, w)
    np.testing.assert_array_equal(dx, [[4.0, -1.0]])
    np.testing.assert_array_equal(dw, [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    np.testing.assert_array_equal(db, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x, w, b = draw(4, 3, 2, 0, dtype)
    y = linear.forward(x, w, b)
    dx, dw, db = linear.backward(np.ones_like(y), x, w)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (y.shape, dx.shape, dw.shape, db.shape) == ((4, 2), (4, 3), (2, 3), (2,))


def test_non_contiguous_arguments_are_accepted():
    x, w, b = draw(4, 3, 2, 1)
    x_f, w_t = np.asfortranarray(x), np.ascontiguousarray(w.T).T  # same values, other layouts
    np.testing.assert_allclose(linear.forward(x_f, w_t, b), x @ w.T + b, rtol=1e-12)
    dy = random_dy((4, 2)).T.copy().T
    dx, dw, _ = linear.backward(dy, x_f, w_t)
    np.testing.assert_allclose(dw, dy.T @ x, rtol=1e-12)


@given(N=sizes, IN=sizes, OUT=sizes, seed=seeds, split=st.booleans())
def test_the_blas_kernels_equal_the_textbook_loops(N, IN, OUT, seed, split):
    """Also with every product cut into chunks (``split``): these sizes are far below
    ONE_THREAD_BELOW, which would run them on one thread."""
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, IN)), rng.standard_normal((OUT, IN)), rng.standard_normal(OUT)
    dy = random_dy((N, OUT), seed + 1)
    with reference_loops():
        y_loops, grads_loops = linear.forward(x, w, b), linear.backward(dy, x, w)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linear, "ONE_THREAD_BELOW", 0 if split else linear.ONE_THREAD_BELOW)
        y_fast, grads_fast = linear.forward(x, w, b), linear.backward(dy, x, w)
    np.testing.assert_allclose(y_fast, y_loops, rtol=1e-12, atol=1e-12)
    for name, g_fast, g_loops in zip(("dx", "dw", "db"), grads_fast, grads_loops):
        np.testing.assert_allclose(g_fast, g_loops, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_small_product_runs_on_one_thread_and_a_large_one_in_chunks():
    assert linear._chunks(64, linear.ONE_THREAD_BELOW - 1) == 1
    assert linear._chunks(64, linear.ONE_THREAD_BELOW) == chunks(64)
