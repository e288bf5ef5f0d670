"""Nearest-neighbour upsampling on the GPU (the math: ``minidl/ops/upsample_nearest.py``).

forward:   thread q computes one output pixel y[n, c, i, j] = x[n, c, i // sh, j // sw]
backward:  thread q computes one dx[n, c, h, w]: the sum of its sh x sw block of dy (a
           gather: each input pixel reads the outputs it was copied to)
"""

from numba import cuda

from ..device import empty
from ._launch import launch


@cuda.jit
def upsample_nearest_forward_kernel(x, sh, sw, y):
    """Thread q: output pixel (n, c, i, j) of y."""
    N, C, OH, OW = y.shape
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, i, j = q // (C * OH * OW), q // (OH * OW) % C, q // OW % OH, q % OW
        y[n, c, i, j] = x[n, c, i // sh, j // sw]


@cuda.jit
def upsample_nearest_backward_kernel(dy, sh, sw, dx):
    """Thread q: dx[n, c, h, w] = sum_{a < sh, b < sw} dy[n, c, h sh + a, w sw + b]."""
    N, C, H, W = dx.shape
    for q in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, h, w = q // (C * H * W), q // (H * W) % C, q // W % H, q % W
        s = 0.0
        for a in range(sh):
            for b in range(sw):
                s += dy[n, c, h * sh + a, w * sw + b]
        dx[n, c, h, w] = s


def forward(x, scale_factor):
    """x (N, C, H, W) -> y (N, C, H sh, W sw), device arrays."""
    sh, sw = scale_factor
    N, C, H, W = x.shape
    y = empty((N, C, H * sh, W * sw), x.dtype, like=x)
    launch(upsample_nearest_forward_kernel, y.size, x, sh, sw, y)
    return y


def backward(dy, scale_factor):
    """dx: dy summed over each sh x sw block, (N, C, OH // sh, OW // sw)."""
    sh, sw = scale_factor
    N, C, OH, OW = dy.shape
    dx = empty((N, C, OH // sh, OW // sw), dy.dtype, like=dy)
    launch(upsample_nearest_backward_kernel, dx.size, dy, sh, sw, dx)
    return dx
