r"""2-D average pooling, forward and backward.

In symbols:

$$y_{n,c,o_h,o_w} = \frac{1}{K_H K_W} \sum_{i < K_H} \sum_{j < K_W} x_{n,\,c,\,o_h s_h - p_h + i,\,o_w s_w - p_w + j},
  \qquad \frac{\partial L}{\partial x_{n,c,h,w}} = \frac{1}{K_H K_W} \sum_{\text{windows } (o_h, o_w) \ni (h, w)} \frac{\partial L}{\partial y_{n,c,o_h,o_w}}$$

Forward. A KH x KW window moves with stride (sh, sw) over every channel of every image
(padded with zeros, (ph, pw) on each side) and keeps the mean of what it covers:

    y[n, c, oh, ow] = 1/(KH KW) sum_{i < KH} sum_{j < KW} x[n, c, oh*sh - ph + i, ow*sw - pw + j]

    x (N, C, H, W)  ->  y (N, C, OH, OW),    OH = (H + 2 ph - KH) // sh + 1
                                             OW = (W + 2 pw - KW) // sw + 1

The padding counts as zeros in the mean (the divisor is always KH*KW: PyTorch's default,
count_include_pad=True). The classic worked 4x4 grid with 2x2 windows and stride 2:

    5 3 | 3 1
    0 2 | 8 5            2.5   4.25
    ----+----    ->
    1 4 | 4 2            3.5   3.75
    0 9 | 2 7

Backward. Every pixel of a window contributes 1/(KH KW) of the window's mean, so the
window's upstream gradient is spread evenly over its pixels:

    dx[n, c, h, w] = sum over the windows (oh, ow) that cover (h, w) of dy[n, c, oh, ow] / (KH KW)

(a sum: with overlapping windows a pixel receives a share from each window covering it).
The shares that fall on the padding are dropped; without padding nothing is lost and
sum(dx) = sum(dy): the gradient is conserved.
"""

import numpy as np
from numba import njit

from .._threads import chunks, run_chunks
from .im2col import output_size


@njit(cache=True, inline="always")
def window_mean(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw):
    """The mean of window (oh, ow) of plane x[n, c], padding counted as zeros. The CUDA
    kernel calls this same function, one thread per output."""
    H, W = x.shape[2], x.shape[3]
    s = 0.0
    for i in range(KH):
        for j in range(KW):
            h = oh * sh - ph + i
            w = ow * sw - pw + j
            if 0 <= h < H and 0 <= w < W:
                s += x[n, c, h, w]
    return s / (KH * KW)


@njit(cache=True, inline="always")
def window_mean_inside(x, n, c, oh, ow, KH, KW, sh, sw):
    """``window_mean`` of a window that lies inside the image (no padding): the same sum
    in the same order, without the test for the border."""
    s = 0.0
    for i in range(KH):
        for j in range(KW):
            s += x[n, c, oh * sh + i, ow * sw + j]
    return s / (KH * KW)


@njit(cache=True, nogil=True)
def avgpool2d_forward_kernel(t, T, x, KH, KW, sh, sw, ph, pw, y):
    """y = the mean of each window (padding counted as zeros); y (N, C, OH, OW) is
    overwritten.

    As in max pooling (``maxpool2d_forward_kernel``), the common 2x2 window without padding
    calls ``window_mean_inside`` with the sizes written as constants, which the compiler
    unrolls: measured on 2 cores, one thread, (64, 32, 32, 32) 3.4 -> 0.8 ms.
    """
    N, C = x.shape[0], x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    inside_2x2 = KH == 2 and KW == 2 and ph == 0 and pw == 0
    for q in range(t * N * C // T, (t + 1) * N * C // T):  # the (image, channel) planes of chunk t of T
        n, c = q // C, q % C
        for oh in range(OH):
            for ow in range(OW):
                if inside_2x2:  # the same mean, with the window's size as constants
                    y[n, c, oh, ow] = window_mean_inside(x, n, c, oh, ow, 2, 2, sh, sw)
                else:
                    y[n, c, oh, ow] = window_mean(x, n, c, oh, ow, KH, KW, sh, sw, ph, pw)


@njit(cache=True, inline="always")
def spread_share(dx, n, c, oh, ow, share, KH, KW, sh, sw, ph, pw):
    """Add ``share`` to every pixel of window (oh, ow) of plane dx[n, c] (the shares that
    fall on the padding are dropped)."""
    H, W = dx.shape[2], dx.shape[3]
    for i in range(KH):
        for j in range(KW):
            h = oh * sh - ph + i
            w = ow * sw - pw + j
            if 0 <= h < H and 0 <= w < W:
                dx[n, c, h, w] += share  # overlapping windows add up


@njit(cache=True, inline="always")
def spread_share_inside(dx, n, c, oh, ow, share, KH, KW, sh, sw):
    """``spread_share`` for a window inside the image (no padding), without the border test."""
    for i in range(KH):
        for j in range(KW):
            dx[n, c, oh * sh + i, ow * sw + j] += share


@njit(cache=True, nogil=True)
def avgpool2d_backward_kernel(t, T, dy, KH, KW, sh, sw, ph, pw, dx):
    """dx[n, c, h, w] = sum of dy[n, c, oh, ow] / (KH KW) over the windows covering (h, w);
    dx (N, C, H, W) is overwritten. (2x2 windows without padding: constant sizes, as in
    forward; (64, 32, 32, 32) 3.5 -> 1.2-1.5 ms.)"""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    inside_2x2 = KH == 2 and KW == 2 and ph == 0 and pw == 0
    for q in range(t * N * C // T, (t + 1) * N * C // T):  # the planes of chunk t of T
        n, c = q // C, q % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0.0
        for oh in range(OH):
            for ow in range(OW):
                share = dy[n, c, oh, ow] / (KH * KW)
                if inside_2x2:
                    spread_share_inside(dx, n, c, oh, ow, share, 2, 2, sh, sw)
                else:
                    spread_share(dx, n, c, oh, ow, share, KH, KW, sh, sw, ph, pw)


def forward(x, kernel_size, stride, padding):
    """Average pooling.

    x (N, C, H, W); kernel_size = (KH, KW); stride = (sh, sw); padding = (ph, pw), each
    at most half the kernel size. Returns y (N, C, OH, OW).
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    run_chunks(avgpool2d_forward_kernel, chunks(N * C), x, KH, KW, sh, sw, ph, pw, y)
    return y


def backward(dy, x_shape, kernel_size, stride, padding):
    """dx: each dy[n, c, oh, ow] spread evenly, 1/(KH KW) each, over its window's pixels.

    dy (N, C, OH, OW); x_shape = (N, C, H, W); kernel_size, stride, padding as in forward.
    Returns dx of shape x_shape.
    """
    dy = np.ascontiguousarray(dy)
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    dx = np.empty(x_shape, dtype=dy.dtype)
    run_chunks(avgpool2d_backward_kernel, chunks(dy.shape[0] * dy.shape[1]), dy, KH, KW, sh, sw, ph, pw, dx)
    return dx
