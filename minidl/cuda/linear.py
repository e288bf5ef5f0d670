"""Linear on the GPU: y = x w^T + b (the math: ``minidl/ops/linear.py``). Its three
matrix products are the tiled GEMM of ``_gemm.py`` (each matrix a batch of one), the bias
and its gradient are ``bias.py``."""

from ..device import empty
from . import bias
from ._gemm import matmul


def _batch_of_one(a):
    return a.reshape(1, a.shape[0], a.shape[1])


def forward(x, w, b=None):
    """y = x w^T + b; x (N, in), w (out, in), b (out,) or None, device arrays. Returns y (N, out)."""
    y = empty((x.shape[0], w.shape[0]), x.dtype, like=x)
    matmul(_batch_of_one(x), _batch_of_one(w), _batch_of_one(y), trans_b=True)  # y = x w^T
    if b is not None:
        bias.forward(y, b)
    return y


def backward(dy, x, w, has_bias=True, input_grad=True):
    """(dx = dy w, dw = dy^T x, db = the column sums of dy, or None without a bias); dx is
    None, not computed, when ``input_grad`` is False."""
    dx = empty(x.shape, dy.dtype, like=dy) if input_grad else None
    dw = empty(w.shape, dy.dtype, like=dy)
    if input_grad:
        matmul(_batch_of_one(dy), _batch_of_one(w), _batch_of_one(dx))  # dx = dy w
    matmul(_batch_of_one(dy), _batch_of_one(x), _batch_of_one(dw), trans_a=True)  # dw = dy^T x
    db = bias.backward(dy) if has_bias else None
    return dx, dw, db
