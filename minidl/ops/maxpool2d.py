r"""2-D max pooling, forward and backward.

In symbols:

$$y_{n,c,h',w'} = \max_{i < K_H,\ j < K_W} x_{n,\,c,\,h' s_h - p_h + i,\,w' s_w - p_w + j}, \qquad
  \frac{\partial L}{\partial x_{n,c,h,w}} = \sum_{(h', w') \,:\, \arg\max \text{ of window } (h', w') = (h, w)} \frac{\partial L}{\partial y_{n,c,h',w'}}$$

Forward. Every channel of every image is summarised window by window: a KH x KW window
moves with stride (sh, sw) over the image (padded by (ph, pw) on each side, the padding
never being the maximum) and keeps the largest value it covers:

    y[n, c, oh, ow] = max_{i < KH, j < KW} x[n, c, oh*sh - ph + i, ow*sw - pw + j]

    x (N, C, H, W)  ->  y (N, C, OH, OW),    OH = (H + 2 ph - KH) // sh + 1
                                             OW = (W + 2 pw - KW) // sw + 1

The classic worked 4x4 grid with 2x2 windows and stride 2:

    5 3 | 3 1
    0 2 | 8 5            5 8
    ----+----    ->
    1 4 | 4 2            9 7
    0 9 | 2 7

Forward also returns, for each output, WHERE its maximum was: ``argmax[n, c, oh, ow] =
h * W + w``, the flat index of that pixel in its (H, W) plane (PyTorch's
``return_indices``). When several pixels of a window hold the maximum, the FIRST one in
row-major window order (smallest i, then smallest j) is kept, as in PyTorch.

NaN. A NaN is larger than everything here: a window holding a NaN outputs NaN and its
argmax points at the NaN (the last one, in window order), so backward routes the gradient
there, as PyTorch does. The plain rule "keep v if v > best" would silently drop a NaN
(every comparison with NaN is False) unless it came first, and a NaN input would pass on
as a finite output.

Backward. y is one pixel of its window, so dl/dx is zero everywhere except at that pixel,
which receives the whole upstream gradient:

    dx[n, c, h, w] = sum over the outputs (oh, ow) with argmax[n, c, oh, ow] = h*W + w
                     of dy[n, c, oh, ow]

A sum, because with overlapping windows (stride < kernel size) one pixel can be the
maximum of several windows and then collects all their gradients.
"""

import math

import numpy as np
from numba import njit

from .._threads import chunks, run_chunks
from .im2col import output_size


@njit(cache=True, inline="always")
def keep_max(best, best_index, v, index):
    """The window's (maximum, flat index) so far, after one more pixel v at flat index
    ``index`` (best_index < 0: no pixel yet). Ties keep the first pixel (strict '>'); a NaN
    wins, the last NaN in window order (as in PyTorch's CPU kernel), so that a NaN is never
    hidden by a larger neighbour.

    The index changes under an ``if``, the value outside it, through ``max`` (and a NaN):
    the same rule, written so that the compiler needs no jump for the value. Inside the
    ``if``, the processor must guess at every pixel whether the comparison holds, and on
    real data it guesses wrong about half of the time: measured on 2 cores, one thread, the
    pooling of a (64, 6, 28, 28) batch took 1.48 ms that way and 0.71 ms this way.
    (``inline="always"``: Numba pastes it into the loop; left a call, it made the same
    pooling 45 % slower.)"""
    if best_index < 0 or v > best or math.isnan(v):  # strict '>': ties keep the first
        best_index = index
    best = v if math.isnan(v) else max(best, v)  # max(NaN, v) is NaN: a NaN stays
    return best, best_index


@njit(cache=True, inline="always")
def window_max(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw):
    """(the maximum, its flat index h*W + w) of window (oh, ow) of plane x[n, c], the first
    one on ties, a NaN if there is one (``keep_max``). The CUDA kernel calls this same
    function, one thread per output."""
    H, W = x.shape[2], x.shape[3]
    best, best_index = -math.inf, -1  # no pixel yet
    for i in range(KH):
        for j in range(KW):
            h, w = oh * sh - ph + i, ow * sw - pw + j
            if 0 <= h < H and 0 <= w < W:  # padding is never the maximum
                best, best_index = keep_max(best, best_index, x[n, c, h, w], h * W + w)
    return best, best_index


@njit(cache=True, inline="always")
def window_max_inside(x, n, c, oh, ow, KH, KW, sh, sw):
    """``window_max`` of a window that lies inside the image (no padding): the same pixels
    in the same order, without the test for the border."""
    W = x.shape[3]
    best, best_index = -math.inf, -1
    for i in range(KH):
        for j in range(KW):
            h, w = oh * sh + i, ow * sw + j
            best, best_index = keep_max(best, best_index, x[n, c, h, w], h * W + w)
    return best, best_index


@njit(cache=True, nogil=True)
def maxpool2d_forward_kernel(t, T, x, KH, KW, sh, sw, ph, pw, y, argmax):
    """y = the maximum of each window, argmax = its flat index h*W + w (first one on ties).

    x (N, C, H, W); y (N, C, OH, OW) and argmax (same shape, int64) are overwritten.

    The call appears twice: the general ``window_max``, and for the common 2x2 window
    without padding (LeNet, VGG, U-Net, YOLO) ``window_max_inside`` with the sizes written
    as the constants 2, 2. Then the compiler knows the window's four pixels, unrolls the
    two short loops and needs no test for the border; with KH, KW known only when the
    kernel runs, it must run a loop of two steps, twice, for every output. Measured on 2
    cores, one thread: LeNet-5's first pooling (64, 6, 28, 28) 0.61 -> 0.26 ms; (64, 32,
    32, 32) 5.0 -> 1.9 ms. (The constants alone, with the border test kept, ran 2x slower
    than the general loop: it takes both.)
    """
    N, C = x.shape[0], x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    inside_2x2 = KH == 2 and KW == 2 and ph == 0 and pw == 0
    for q in range(t * N * C // T, (t + 1) * N * C // T):  # the (image, channel) planes of chunk t of T
        n, c = q // C, q % C
        for oh in range(OH):
            for ow in range(OW):
                if inside_2x2:  # the same maximum, with the window's size as constants (see above)
                    y[n, c, oh, ow], argmax[n, c, oh, ow] = window_max_inside(x, n, c, oh, ow, 2, 2, sh, sw)
                else:
                    y[n, c, oh, ow], argmax[n, c, oh, ow] = window_max(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw)


@njit(cache=True, nogil=True)
def maxpool2d_backward_kernel(t, T, dy, argmax, dx):
    """dx[n, c, argmax[n, c, oh, ow]] += dy[n, c, oh, ow]: dx is (N, C, H*W), each plane
    flat, so that argmax's flat index k = h*W + w picks the pixel as it is; overwritten.

    (Indexed dx[n, c, k // W, k % W] on (N, C, H, W), the same pixel cost an integer
    division per output: measured on 2 cores, one thread, the backward of LeNet-5's first
    pooling 0.21 -> 0.06 ms flat; the LeNet-5 training step 3.8 % faster on one thread, 5.1 %
    on two.)"""
    N, C, HW = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for q in range(t * N * C // T, (t + 1) * N * C // T):  # the planes of chunk t of T
        n, c = q // C, q % C
        for k in range(HW):
            dx[n, c, k] = 0.0
        for oh in range(OH):
            for ow in range(OW):
                dx[n, c, argmax[n, c, oh, ow]] += dy[n, c, oh, ow]  # overlapping windows add up


def forward(x, kernel_size, stride, padding):
    """Max pooling.

    x (N, C, H, W); kernel_size = (KH, KW); stride = (sh, sw); padding = (ph, pw), each
    at most half the kernel size (so that no window lies entirely in the padding).
    Returns (y, argmax): y (N, C, OH, OW) and argmax (N, C, OH, OW) int64, the flat index
    h * W + w of each maximum in its (H, W) plane (the first one on ties).
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    run_chunks(maxpool2d_forward_kernel, chunks(N * C), x, KH, KW, sh, sw, ph, pw, y, argmax)
    return y, argmax


def backward(dy, argmax, x_shape, kernel_size, stride, padding):
    """dx: each dy[n, c, oh, ow] routed to the pixel argmax[n, c, oh, ow] (summed).

    dy and argmax (N, C, OH, OW); x_shape = (N, C, H, W); kernel_size, stride, padding as
    in forward. Returns dx of shape x_shape. The scatter here needs no geometry (each
    output knows its pixel); the GPU's gather (``minidl/cuda/maxpool2d.py``) uses it to
    find the windows that cover a pixel.
    """
    dy = np.ascontiguousarray(dy)
    argmax = np.ascontiguousarray(argmax)
    N, C, H, W = x_shape
    dx = np.empty((N, C, H * W), dtype=dy.dtype)  # each (H, W) plane flat, as argmax indexes it
    run_chunks(maxpool2d_backward_kernel, chunks(N * C), dy, argmax, dx)
    return dx.reshape(x_shape)
