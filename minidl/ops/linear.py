r"""Linear (fully connected) layer: y = x w^T + b.

In symbols:

$$y_{n,o} = \sum_i x_{n,i}\, w_{o,i} + b_o, \qquad
  \frac{\partial L}{\partial x} = \delta\, w, \quad \frac{\partial L}{\partial w} = \delta^\top x, \quad
  \frac{\partial L}{\partial b_o} = \sum_n \delta_{n,o}, \qquad \delta = \frac{\partial L}{\partial y}$$

Forward, for a batch of N samples with ``in`` input and ``out`` output features:

    y[n, o] = sum_i x[n, i] * w[o, i]  +  b[o]

    x: (N, in)    w: (out, in)  (PyTorch's layout)    b: (out,) or None    y: (N, out)

Backward. Given dy = dL/dy (N, out), the chain rule through the one sum above gives

    dx[n, i] = sum_o dy[n, o] * (d y[n, o] / d x[n, i]) = sum_o dy[n, o] * w[o, i]
               ->  dx = dy w                        (N, out) @ (out, in) = (N, in)
    dw[o, i] = sum_n dy[n, o] * x[n, i]
               ->  dw = dy^T x                      (out, N) @ (N, in)   = (out, in)
    db[o]    = sum_n dy[n, o]                       (each b[o] is added to every sample)

The file shows those sums first as loops over n, o, i (``reference_*``, what
``MINIDL_REFERENCE=1`` runs, see minidl/reference.py), then as the three matrix products
the layer uses: BLAS (``gemm``, minidl/_blas.py), much faster than any triple loop.
The tests hold the two equal. The fast kernels add the bias and sum its gradient inside
their chunk of rows (one pass over contiguous rows), as the convolution's kernels do.
"""

import numpy as np
from numba import njit

from .. import reference
from .._blas import gemm
from .._threads import chunks, run_chunks
from ..device import empty
from . import bias

# --- the textbook form ----------------------------------------------------------------------


@njit(cache=True)
def reference_forward_kernel(x, w, y):
    """y[n, o] = sum_i x[n, i] * w[o, i]; y (N, out) is overwritten."""
    N, IN = x.shape
    OUT = w.shape[0]
    for n in range(N):
        for o in range(OUT):
            s = 0.0
            for i in range(IN):
                s += x[n, i] * w[o, i]
            y[n, o] = s


@njit(cache=True)
def reference_backward_kernel(dy, x, w, dx, dw):
    """dx[n, i] = sum_o dy[n, o] * w[o, i] and dw[o, i] = sum_n dy[n, o] * x[n, i];
    dx (N, in) and dw (out, in) are overwritten."""
    N, IN = x.shape
    OUT = w.shape[0]
    for n in range(N):
        for i in range(IN):
            s = 0.0
            for o in range(OUT):
                s += dy[n, o] * w[o, i]
            dx[n, i] = s
    for o in range(OUT):
        for i in range(IN):
            s = 0.0
            for n in range(N):
                s += dy[n, o] * x[n, i]
            dw[o, i] = s


# --- the fast form: BLAS, the batch in chunks ----------------------------------------------


@njit(cache=True, nogil=True)
def linear_forward_kernel(t, T, x, w, b, y):
    """y = x w^T + b: y[n, o] = b[o] + sum_i x[n, i] w[o, i]; y is overwritten, rows n of
    chunk t of T: one single-threaded BLAS product (minidl/_threads.py runs the chunks
    side by side)."""
    N, OUT = y.shape
    lo, hi = t * N // T, (t + 1) * N // T
    gemm(1.0, x[lo:hi, :], w[:, :].T, 0.0, y[lo:hi, :])  # (rows, in) @ (in, out)
    for n in range(lo, hi):
        for o in range(OUT):
            y[n, o] += b[o]


@njit(cache=True, nogil=True)
def linear_backward_kernel(t, T, dy, dy_T, x, w, input_grad, dx, dw, db):
    """dx = dy w (N, in) if ``input_grad``, dw = dy^T x (out, in) and db[o] = sum_n
    dy[n, o], all overwritten. dy_T is dy^T as a C-contiguous (out, N) array, so that
    chunk t's rows of dw (and of db) come from contiguous blocks: dx's rows n and dw's rows
    o are each cut into T chunks, and this is chunk t."""
    N, OUT = dy.shape
    lo, hi = t * N // T, (t + 1) * N // T
    if input_grad:
        gemm(1.0, dy[lo:hi, :], w[:, :], 0.0, dx[lo:hi, :])  # (rows n, out) @ (out, in)
    lo, hi = t * OUT // T, (t + 1) * OUT // T
    gemm(1.0, dy_T[lo:hi, :], x[:, :], 0.0, dw[lo:hi, :])  # (rows o, N) @ (N, in)
    for o in range(lo, hi):
        s = 0.0  # float64, like ops/bias.py
        for n in range(N):
            s += dy_T[o, n]
        db[o] = s


ONE_THREAD_BELOW = 2_000_000  # multiply-adds: a smaller product is not cut into chunks


def _chunks(rows, macs):
    """``chunks(rows)`` (minidl/_threads.py), but 1 for a product of fewer than
    ONE_THREAD_BELOW multiply-adds: handing a chunk to a helper thread costs ~10-20 us, more
    than half of a small product saves. Measured on 2 cores, 64 rows, the fastest of 200
    calls in two runs, one thread against two: 120 -> 84 (0.6 M) forward 28-36 us against
    47-53, backward 57-74 against 84-99; 400 -> 120 (3.1 M) forward 122-128 against 108-113,
    backward 242-252 against 190-201 (there two threads win)."""
    return chunks(rows) if macs >= ONE_THREAD_BELOW else 1


def forward(x, w, b=None):
    """y = x w^T + b.

    x: (N, in), w: (out, in), b: (out,) or None, all of one float dtype.
    Returns y: (N, out), same dtype.
    """
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    y = empty((x.shape[0], w.shape[0]), x.dtype, like=x)
    if reference.enabled():
        reference_forward_kernel(x, w, y)
        if b is not None:
            bias.forward(y, b)
    else:
        b = np.zeros(w.shape[0], x.dtype) if b is None else np.ascontiguousarray(b)
        run_chunks(linear_forward_kernel, _chunks(x.shape[0], x.size * w.shape[0]), x, w, b, y)
    return y


def backward(dy, x, w, has_bias=True, input_grad=True):
    """Gradients of y = x w^T + b, in the order of forward's inputs.

    dy: (N, out), x: (N, in) (forward's input), w: (out, in).
    Returns (dx (N, in), dw (out, in), db (out,) or None when ``has_bias`` is False);
    dx is None, and its product skipped, when ``input_grad`` is False.
    """
    dy, x, w = np.ascontiguousarray(dy), np.ascontiguousarray(x), np.ascontiguousarray(w)
    dx = empty(x.shape, dy.dtype, like=dy)
    dw = empty(w.shape, dy.dtype, like=dy)
    if reference.enabled():
        reference_backward_kernel(dy, x, w, dx, dw)
        return (dx if input_grad else None), dw, (bias.backward(dy) if has_bias else None)
    db = empty(w.shape[0], dy.dtype, like=dy)
    T = _chunks(min(x.shape[0], w.shape[0]), (1 + input_grad) * x.size * w.shape[0])  # dx's product, dw's
    run_chunks(linear_backward_kernel, T, dy, np.ascontiguousarray(dy.T), x, w, input_grad, dx, dw, db)
    return (dx if input_grad else None), dw, (db if has_bias else None)
