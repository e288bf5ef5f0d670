"""RoI max pooling on the GPU (the math: ``minidl/ops/roi_pool.py``, whose ``pool_bin``,
``bin_max`` and ``unpool_region`` the threads call).

forward:   thread q computes one output y[k, c, p, q] and its argmax
backward:  thread q owns one plane dx[n, c] and adds in, region by region, the gradient of
           every bin whose max it holds. One thread per output would scatter, and two
           regions (or two bins of one) can share their max: that would need atomics,
           whose order, and so whose rounding, changes from run to run.
"""

import numpy as np
from numba import cuda

from ..device import empty, zeros
from ..ops import roi_pool
from ._launch import from_cpu, launch

pool_bin = from_cpu(roi_pool.pool_bin)
bin_max = from_cpu(roi_pool.bin_max)
unpool_region = from_cpu(roi_pool.unpool_region)


@cuda.jit
def roi_pool_forward_kernel(x, rois, spatial_scale, y, argmax):
    """Thread t: output (k, c, p, q)."""
    H, W = x.shape[2], x.shape[3]
    K, C, PH, PW = y.shape
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        k, c, p, q = t // (C * PH * PW), t // (PH * PW) % C, t // PW % PH, t % PW
        n, r_start, r_end, c_start, c_end = pool_bin(rois, k, p, q, PH, PW, spatial_scale, H, W)
        best, where = bin_max(x, n, c, r_start, r_end, c_start, c_end)
        y[k, c, p, q] = best
        argmax[k, c, p, q] = where


@cuda.jit
def roi_pool_backward_kernel(dy, rois, argmax, dx):
    """Thread t: plane (n, c) of dx, accumulating the bins of every region of image n."""
    N, C = dx.shape[0], dx.shape[1]
    for t in range(cuda.grid(1), N * C, cuda.gridsize(1)):
        n, c = t // C, t % C
        for k in range(dy.shape[0]):
            if int(rois[k, 0]) == n:
                unpool_region(dy, argmax, k, n, c, dx)


def forward(x, rois, output_size, spatial_scale=1.0):
    """As the CPU op, for device arrays: (y (K, C, PH, PW), argmax int64)."""
    PH, PW = output_size
    K, C = rois.shape[0], x.shape[1]
    y = empty((K, C, PH, PW), x.dtype, like=x)
    argmax = empty((K, C, PH, PW), np.int64, like=x)
    launch(roi_pool_forward_kernel, y.size, x, rois, float(spatial_scale), y, argmax)
    return y, argmax


def backward(dy, rois, argmax, x_shape):
    """dx of x_shape on the device."""
    dx = zeros(x_shape, dy.dtype, like=dy)
    launch(roi_pool_backward_kernel, x_shape[0] * x_shape[1], dy, rois, argmax, dx)
    return dx
