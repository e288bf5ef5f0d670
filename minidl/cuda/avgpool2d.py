"""Average pooling on the GPU (the math: ``minidl/ops/avgpool2d.py``).

forward:   thread q computes one output y[n, c, oh, ow]: the mean of its window
backward:  thread q computes one dx[n, c, h, w]: it gathers dy / (KH KW) from every
           window that covers (h, w) (``_windows.py``), where the CPU spreads each
           window's gradient over its pixels
"""

from numba import cuda

from ..device import empty
from ..ops import avgpool2d
from ..ops.im2col import output_size
from ._launch import from_cpu, launch
from ._windows import covering_windows

window_mean = from_cpu(avgpool2d.window_mean)


@cuda.jit
def avgpool2d_forward_kernel(x, KH, KW, sh, sw, ph, pw, y):
    """Thread q: y[n, c, oh, ow] = the mean of its KH x KW window, padding counted as 0
    (the CPU file's ``window_mean``)."""
    C = x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, oh, ow = q // (C * OH * OW), q // (OH * OW) % C, q // OW % OH, q % OW
        y[n, c, oh, ow] = window_mean(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw)


@cuda.jit
def avgpool2d_backward_kernel(dy, KH, KW, sh, sw, ph, pw, dx):
    """Thread q: dx[n, c, h, w] = sum of dy[n, c, oh, ow] / (KH KW) over the windows
    (oh, ow) that cover (h, w)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for q in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, h, w = q // (C * H * W), q // (H * W) % C, q // W % H, q % W
        oh_first, oh_stop = covering_windows(h, KH, sh, ph, OH)
        ow_first, ow_stop = covering_windows(w, KW, sw, pw, OW)
        s = 0.0
        for oh in range(oh_first, oh_stop):
            for ow in range(ow_first, ow_stop):
                s += dy[n, c, oh, ow]
        dx[n, c, h, w] = s / (KH * KW)


def forward(x, kernel_size, stride, padding):
    """Average pooling of the device array x (N, C, H, W). Returns y (N, C, OH, OW)."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    y = empty((N, C, OH, OW), x.dtype, like=x)
    launch(avgpool2d_forward_kernel, y.size, x, KH, KW, sh, sw, ph, pw, y)
    return y


def backward(dy, x_shape, kernel_size, stride, padding):
    """dx of shape x_shape: each pixel's share of the windows that cover it."""
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    dx = empty(x_shape, dy.dtype, like=dy)
    launch(avgpool2d_backward_kernel, dx.size, dy, KH, KW, sh, sw, ph, pw, dx)
    return dx
