"""Max pooling on the GPU (the math, and which maximum wins a tie: ``minidl/ops/maxpool2d.py``).

forward:   thread q computes one output y[n, c, oh, ow] and its argmax h * W + w
           (the first maximum in row-major window order, as on the CPU)
backward:  thread q computes one dx[n, c, h, w]: a GATHER over the windows that cover
           (h, w) (``_windows.py``), adding dy[n, c, oh, ow] of those whose argmax is
           this pixel. The CPU routes each dy to its argmax (a scatter); on the GPU two
           overlapping windows with one argmax would race, the gather never does.
"""

import numpy as np
from numba import cuda

from ..device import empty
from ..ops import maxpool2d
from ..ops.im2col import output_size
from ._launch import from_cpu, launch
from ._windows import covering_windows

window_max = from_cpu(maxpool2d.window_max)


@cuda.jit
def maxpool2d_forward_kernel(x, KH, KW, sh, sw, ph, pw, y, argmax):
    """Thread q: y[n, c, oh, ow] = the maximum of its window, argmax = its flat index (the
    CPU file's ``window_max``)."""
    C = x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, oh, ow = q // (C * OH * OW), q // (OH * OW) % C, q // OW % OH, q % OW
        y[n, c, oh, ow], argmax[n, c, oh, ow] = window_max(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw)


@cuda.jit
def maxpool2d_backward_kernel(dy, argmax, KH, KW, sh, sw, ph, pw, dx):
    """Thread q: dx[n, c, h, w] = sum of dy[n, c, oh, ow] over the windows covering (h, w)
    whose argmax is h * W + w."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for q in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, h, w = q // (C * H * W), q // (H * W) % C, q // W % H, q % W
        oh_first, oh_stop = covering_windows(h, KH, sh, ph, OH)
        ow_first, ow_stop = covering_windows(w, KW, sw, pw, OW)
        s = 0.0
        for oh in range(oh_first, oh_stop):
            for ow in range(ow_first, ow_stop):
                if argmax[n, c, oh, ow] == h * W + w:
                    s += dy[n, c, oh, ow]
        dx[n, c, h, w] = s


def forward(x, kernel_size, stride, padding):
    """Max pooling of the device array x. Returns (y, argmax), both (N, C, OH, OW)."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    y = empty((N, C, OH, OW), x.dtype, like=x)
    argmax = empty((N, C, OH, OW), np.int64, like=x)
    launch(maxpool2d_forward_kernel, y.size, x, KH, KW, sh, sw, ph, pw, y, argmax)
    return y, argmax


def backward(dy, argmax, x_shape, kernel_size, stride, padding):
    """dx of shape x_shape: each dy routed to its argmax pixel (gathered, summed)."""
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    dx = empty(x_shape, dy.dtype, like=dy)
    launch(maxpool2d_backward_kernel, dx.size, dy, argmax, KH, KW, sh, sw, ph, pw, dx)
    return dx
