"""Affine warp with bilinear interpolation on the GPU (the math: ``minidl/ops/warp_affine.py``).

forward:   thread q computes one output pixel y[n, c, i, j] (a gather: it reads its four
           corners, with the CPU file's ``source_point`` and ``blend``)
backward:  thread q owns one image plane dx[n, c] and spreads every dy[n, c, i, j] of that
           plane into it. Per output pixel it would be a scatter, where two threads can add
           into the same dx pixel at once (it would need atomics, whose order, and so whose
           rounding, changes from run to run); one thread per plane adds in a fixed order,
           the same at every run.
"""

from numba import cuda

from ..device import empty, zeros
from ..ops import warp_affine
from ._launch import from_cpu, launch

source_point = from_cpu(warp_affine.source_point)
blend = from_cpu(warp_affine.blend)
spread = from_cpu(warp_affine.spread)


@cuda.jit
def warp_affine_forward_kernel(x, theta, y):
    """Thread q: output pixel (n, c, i, j) of y."""
    N, C, H, W = x.shape
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, i, j = q // (C * H * W), q // (H * W) % C, q // W % H, q % W
        u, v = source_point(theta, n, i, j)
        y[n, c, i, j] = blend(x, n, c, u, v)


@cuda.jit
def warp_affine_backward_kernel(dy, theta, dx):
    """Thread q: plane p = (n, c) of dx, accumulating every dy[n, c, i, j] into its corners."""
    N, C, H, W = dy.shape
    for p in range(cuda.grid(1), N * C, cuda.gridsize(1)):
        n, c = p // C, p % C
        for i in range(H):
            for j in range(W):
                u, v = source_point(theta, n, i, j)
                spread(dx, n, c, u, v, dy[n, c, i, j])


def forward(x, theta):
    """x (N, C, H, W), theta (N, 2, 3) -> y (N, C, H, W), device arrays."""
    y = empty(x.shape, x.dtype, like=x)
    launch(warp_affine_forward_kernel, y.size, x, theta, y)
    return y


def backward(dy, theta):
    """dx (N, C, H, W) = A^T dy, device arrays."""
    dx = zeros(dy.shape, dy.dtype, like=dy)
    N, C = dy.shape[:2]
    launch(warp_affine_backward_kernel, N * C, dy, theta, dx)
    return dx
