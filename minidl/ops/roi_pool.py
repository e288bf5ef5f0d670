r"""RoI max pooling (Fast R-CNN; torchvision's ``roi_pool``): a fixed-size feature map
(PH x PW) for every region of interest, whatever its size, by max pooling over a grid of
PH x PW bins laid on the region.

In symbols: region k is (n, x1, y1, x2, y2) in input-image coordinates. Scaled by s =
``spatial_scale`` (the feature map's size over the image's: 1/16 after four stride-2
stages) and rounded to the feature grid, it covers rows r0..r1 and columns c0..c1:

$$r_0 = \mathrm{round}(s\, y_1),\ r_1 = \mathrm{round}(s\, y_2),\quad
  h = \max(r_1 - r_0 + 1,\ 1),\quad b_h = h / P_H \quad (\text{columns alike})$$

$$y_{k,c,p,q} = \max_{\substack{r_0 + \lfloor p\, b_h \rfloor \le i < r_0 + \lceil (p+1)\, b_h \rceil \\
                              c_0 + \lfloor q\, b_w \rfloor \le j < c_0 + \lceil (q+1)\, b_w \rceil}} x_{n,c,i,j}$$

with the bin's rows and columns clipped to the map; a bin left empty by the clipping
gives 0. Forward, as loops:

    for k, c, p, q:
        n = rois[k, 0];   r0, c0, r1, c1 = round(s * (y1, x1, y2, x2))    (half away from 0)
        bh, bw = max(r1 - r0 + 1, 1) / PH,  max(c1 - c0 + 1, 1) / PW
        rows = [r0 + floor(p bh), r0 + ceil((p + 1) bh))   clipped to [0, H]
        cols = [c0 + floor(q bw), c0 + ceil((q + 1) bw))   clipped to [0, W]
        y[k, c, p, q] = max of x[n, c, rows, cols]   (0 and argmax -1 if the bin is empty)
        argmax[k, c, p, q] = the flat index i W + j of that max (the first one on ties)

    x (N, C, H, W), rois (K, 5)  ->  y (K, C, PH, PW), argmax (K, C, PH, PW)

The rounding is the point of RoI Align (``ops/roi_align.py``): a region's edge moves by up
to half a feature cell, 8 input pixels at s = 1/16.

Backward. As in max pooling, each output's gradient goes to the one input it came from,
and bins (of one region or of several) that share an input add up:

    dx[n, c, argmax // W, argmax % W] += dy[k, c, p, q]      (nothing for an empty bin)

The rois get no gradient (they are proposals, not outputs of this network's layers).
"""

import math

import numpy as np
from numba import njit

from ..device import empty, zeros


@njit(cache=True, inline="always")
def round_half_away(v):
    """C's round(): halves go away from zero (Python's round() goes to the even one)."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


@njit(cache=True, inline="always")
def pool_bin(rois, k, p, q, PH, PW, spatial_scale, H, W):
    """(n, row_start, row_end, col_start, col_end) of bin (p, q) of region k, clipped to
    the H x W map (end exclusive; empty when an end is not past its start)."""
    n = int(rois[k, 0])
    c0, r0 = round_half_away(rois[k, 1] * spatial_scale), round_half_away(rois[k, 2] * spatial_scale)
    c1, r1 = round_half_away(rois[k, 3] * spatial_scale), round_half_away(rois[k, 4] * spatial_scale)
    bh, bw = max(r1 - r0 + 1, 1) / PH, max(c1 - c0 + 1, 1) / PW
    row_start = min(max(r0 + int(math.floor(p * bh)), 0), H)
    row_end = min(max(r0 + int(math.ceil((p + 1) * bh)), 0), H)
    col_start = min(max(c0 + int(math.floor(q * bw)), 0), W)
    col_end = min(max(c0 + int(math.ceil((q + 1) * bw)), 0), W)
    return n, row_start, row_end, col_start, col_end


@njit(cache=True, inline="always")
def bin_max(x, n, c, row_start, row_end, col_start, col_end):
    """(max, flat index) of x[n, c] over the bin; (0, -1) for an empty bin."""
    if row_end <= row_start or col_end <= col_start:
        return 0.0, -1
    W = x.shape[3]
    best, where = x[n, c, row_start, col_start], row_start * W + col_start
    for i in range(row_start, row_end):
        for j in range(col_start, col_end):
            if x[n, c, i, j] > best:
                best, where = x[n, c, i, j], i * W + j
    return best, where


@njit(cache=True)
def roi_pool_forward_kernel(x, rois, spatial_scale, y, argmax):
    """y[k, c, p, q] and argmax[k, c, p, q] for every region, channel and bin."""
    H, W = x.shape[2], x.shape[3]
    K, C, PH, PW = y.shape
    for k in range(K):
        for c in range(C):
            for p in range(PH):
                for q in range(PW):
                    n, r_start, r_end, c_start, c_end = pool_bin(rois, k, p, q, PH, PW, spatial_scale, H, W)
                    best, where = bin_max(x, n, c, r_start, r_end, c_start, c_end)
                    y[k, c, p, q] = best
                    argmax[k, c, p, q] = where


@njit(cache=True, inline="always")
def unpool_region(dy, argmax, k, n, c, dx):
    """Region k, channel c: dx[n, c] += each non-empty bin's dy at the bin's argmax."""
    W = dx.shape[3]
    for p in range(dy.shape[2]):
        for q in range(dy.shape[3]):
            a = argmax[k, c, p, q]
            if a >= 0:
                dx[n, c, a // W, a % W] += dy[k, c, p, q]


@njit(cache=True)
def roi_pool_backward_kernel(dy, rois, argmax, dx):
    """Every region's bins routed to their argmax; dx (zeros) accumulates."""
    for k in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            unpool_region(dy, argmax, k, int(rois[k, 0]), c, dx)


def forward(x, rois, output_size, spatial_scale=1.0):
    """RoI max pooling. x (N, C, H, W) float; rois (K, 5) of x's dtype, rows (n, x1, y1, x2,
    y2) with 0 <= n < N; output_size (PH, PW). Returns (y (K, C, PH, PW), argmax int64)."""
    PH, PW = output_size
    K, C = rois.shape[0], x.shape[1]
    y = empty((K, C, PH, PW), x.dtype, like=x)
    argmax = empty((K, C, PH, PW), np.int64, like=x)
    roi_pool_forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(rois), float(spatial_scale), y, argmax)
    return y, argmax


def backward(dy, rois, argmax, x_shape):
    """dx of x_shape: every dy routed to its bin's argmax."""
    dx = zeros(x_shape, dy.dtype, like=dy)
    roi_pool_backward_kernel(np.ascontiguousarray(dy), np.ascontiguousarray(rois), argmax, dx)
    return dx
