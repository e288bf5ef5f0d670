"""2-D convolution on the GPU (the equation, the shapes and the backward derivation:
``minidl/ops/conv2d.py``), as im2col + the tiled matrix product of ``_gemm.py``:

    forward          cols = im2col(x)                        one thread per column entry
                     Y[n] = w_mat @ cols[n] + b              tiled GEMM, one thread per y element
    backward_input   dcols[n] = w_mat^T @ dY[n]              tiled GEMM
                     dx = col2im(dcols)                      one thread per pixel (a gather)
    backward_params  dw_mat = sum_n dY[n] @ cols[n]^T        tiled GEMM summed over the batch
                     db[co] = sum of dy[:, co]               one block per channel (a tree)

Unlike the CPU, which recomputes each image's columns in cache, the GPU keeps the whole
(N, C*KH*KW, OH*OW) column matrix: memory is plentiful there, and one big product keeps
every multiprocessor busy.
"""

from ..device import empty
from ..ops.im2col import output_size
from . import bias
from ._gemm import matmul
from .im2col import col2im, im2col


def _w_mat(w):
    """w (C_out, C, KH, KW) as a batch of one matrix (1, C_out, C*KH*KW)."""
    return w.reshape(1, w.shape[0], w.size // w.shape[0])


def forward(x, w, b, stride, padding):
    """y = conv2d(x, w) + b on device arrays; shapes as on the CPU. Returns y (N, C_out, OH, OW)."""
    N, C, H, W = x.shape
    C_out, _, KH, KW = w.shape
    OH, OW = output_size(H, KH, stride[0], padding[0]), output_size(W, KW, stride[1], padding[1])
    cols = im2col(x, KH, KW, stride, padding)  # (N, C*KH*KW, OH*OW)
    y = empty((N, C_out, OH * OW), x.dtype, like=x)
    matmul(_w_mat(w), cols, y)  # y[n] = w_mat @ cols[n]
    if b is not None:
        bias.forward(y, b)
    return y.reshape(N, C_out, OH, OW)


def backward_input(dy, w, x_shape, stride, padding):
    """dx = col2im(w_mat^T dY): the gradient with respect to the input, of shape x_shape."""
    N, C_out, OH, OW = dy.shape
    _, C, KH, KW = w.shape
    dcols = empty((N, C * KH * KW, OH * OW), dy.dtype, like=dy)
    matmul(_w_mat(w), dy.reshape(N, C_out, OH * OW), dcols, trans_a=True)  # dcols[n] = w_mat^T dY[n]
    return col2im(dcols, x_shape, KH, KW, stride, padding)


def backward_params(dy, x, w_shape, stride, padding):
    """(dw of shape w_shape, db (C_out,)): dw_mat = sum_n dY[n] cols[n]^T, db = sum of dy."""
    N, C_out, OH, OW = dy.shape
    _, C, KH, KW = w_shape
    cols = im2col(x, KH, KW, stride, padding)
    dw = empty((1, C_out, C * KH * KW), dy.dtype, like=dy)
    matmul(dy.reshape(N, C_out, OH * OW), cols, dw, trans_b=True, sum_batch=True)
    return dw.reshape(w_shape), bias.backward(dy)


def backward(dy, x, w, stride, padding, has_bias=True, input_grad=True):
    """The gradients of conv2d in the order of forward's inputs: (dx, dw, db); db is None
    without a bias, dx is None when ``input_grad`` is False (not computed)."""
    dx = backward_input(dy, w, x.shape, stride, padding) if input_grad else None
    dw, db = backward_params(dy, x, w.shape, stride, padding)
    return dx, dw, (db if has_bias else None)
