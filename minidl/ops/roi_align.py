r"""RoI Align (Mask R-CNN; torchvision's ``roi_align``): a fixed-size feature map (PH x PW)
for every region of interest, with no rounding: each bin averages the feature map
sampled, by bilinear interpolation, at a few regularly spaced points inside it.

In symbols: region k = (n, x1, y1, x2, y2), scaled by s = ``spatial_scale``; with
``aligned`` the half-pixel offset o = 1/2 is taken off (pixel centres sit at integer + 1/2
in the image, at integer positions in the map), else o = 0 and the region is at least
1 x 1. Bin (p, q) is sampled on a g_h x g_w grid (``sampling_ratio``, or
ceil(region height / PH) when it is <= 0):

$$y_{k,c,p,q} = \frac{1}{g_h g_w} \sum_{a < g_h} \sum_{b < g_w}
  \mathrm{bilinear}\big(x_{n,c},\ v_0 + (p + \tfrac{a + 1/2}{g_h})\, b_h,\ u_0 + (q + \tfrac{b + 1/2}{g_w})\, b_w\big)$$

with $v_0 = s\, y_1 - o$, $b_h = (s\, y_2 - o - v_0) / P_H$ (columns alike). Bilinear
interpolation at a point (v, u) of the map blends the 4 cells around it with the weights
(1 - fv)(1 - fu), (1 - fv) fu, fv (1 - fu), fv fu, fv and fu the fractional parts; a point
within one cell outside the map is clamped to its edge, a point further out gives 0.

Forward, as loops (torchvision's rules exactly):

    for k, c, p, q:
        v0, u0 = s y1 - o, s x1 - o;   hgt, wid = s y2 - o - v0, s x2 - o - u0
        if not aligned: hgt, wid = max(hgt, 1), max(wid, 1)
        bh, bw = hgt / PH, wid / PW;   gh, gw = sampling_ratio or ceil(hgt / PH), ceil(wid / PW)
        y[k, c, p, q] = (1 / (gh gw)) * sum over a < gh, b < gw of
                        bilinear(x[n, c], v0 + p bh + (a + 0.5) bh / gh, u0 + q bw + (b + 0.5) bw / gw)

    x (N, C, H, W), rois (K, 5)  ->  y (K, C, PH, PW)

Backward. y is linear in x: every dy[k, c, p, q] goes back to the 4 cells of each of its
gh gw sample points, with that point's bilinear weight divided by gh gw, and everything
that lands on one cell adds up:

    dx[n, c, v_low or v_high, u_low or u_high] += weight * dy[k, c, p, q] / (gh gw)

The rois get no gradient. Compare RoI pooling (``ops/roi_pool.py``), which rounds the
region to the feature grid and takes a max: RoI Align's outputs move smoothly with the
region, which is what a pixel-accurate mask needs.
"""

import math

import numpy as np
from numba import njit

from ..device import empty, zeros


@njit(cache=True, inline="always")
def region(rois, k, p, q, PH, PW, spatial_scale, sampling_ratio, aligned):
    """(n, v, u, step_v, step_u, gh, gw): bin (p, q) of region k samples the points
    (v + (a + 1/2) step_v, u + (b + 1/2) step_u) for a < gh, b < gw."""
    offset = 0.5 if aligned else 0.0
    n = int(rois[k, 0])
    u0, v0 = rois[k, 1] * spatial_scale - offset, rois[k, 2] * spatial_scale - offset
    wid, hgt = rois[k, 3] * spatial_scale - offset - u0, rois[k, 4] * spatial_scale - offset - v0
    if not aligned:  # the old rule: a region is at least one cell
        wid, hgt = max(wid, 1.0), max(hgt, 1.0)
    bh, bw = hgt / PH, wid / PW
    gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(hgt / PH))
    gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(wid / PW))
    return n, v0 + p * bh, u0 + q * bw, bh / max(gh, 1), bw / max(gw, 1), gh, gw  # (gh = 0: an empty region)


@njit(cache=True, inline="always")
def corners(v, u, H, W):
    """(inside, v_low, v_high, u_low, u_high, w_ll, w_lh, w_hl, w_hh): the 4 cells around
    (v, u) and their bilinear weights; a point within one cell outside the map is clamped
    to its edge, one further out is not inside (torchvision's rule)."""
    if v < -1.0 or v > H or u < -1.0 or u > W:
        return False, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0
    v, u = max(v, 0.0), max(u, 0.0)
    v_low, u_low = int(v), int(u)
    if v_low >= H - 1:
        v_low = v_high = H - 1
        v = float(v_low)
    else:
        v_high = v_low + 1
    if u_low >= W - 1:
        u_low = u_high = W - 1
        u = float(u_low)
    else:
        u_high = u_low + 1
    fv, fu = v - v_low, u - u_low
    return True, v_low, v_high, u_low, u_high, (1 - fv) * (1 - fu), (1 - fv) * fu, fv * (1 - fu), fv * fu


@njit(cache=True, inline="always")
def bin_average(x, n, c, v, u, step_v, step_u, gh, gw):
    """The average of the bilinear samples of x[n, c] over one bin."""
    H, W = x.shape[2], x.shape[3]
    s = 0.0
    for a in range(gh):
        for b in range(gw):
            inside, vl, vh, ul, uh, w1, w2, w3, w4 = corners(v + (a + 0.5) * step_v, u + (b + 0.5) * step_u, H, W)
            if inside:
                s += w1 * x[n, c, vl, ul] + w2 * x[n, c, vl, uh] + w3 * x[n, c, vh, ul] + w4 * x[n, c, vh, uh]
    return s / max(gh * gw, 1)


@njit(cache=True, inline="always")
def bin_spread(dx, n, c, v, u, step_v, step_u, gh, gw, g):
    """The transpose of ``bin_average``: g / (gh gw) spread to every sample's 4 cells."""
    H, W = dx.shape[2], dx.shape[3]
    g = g / max(gh * gw, 1)
    for a in range(gh):
        for b in range(gw):
            inside, vl, vh, ul, uh, w1, w2, w3, w4 = corners(v + (a + 0.5) * step_v, u + (b + 0.5) * step_u, H, W)
            if inside:
                dx[n, c, vl, ul] += w1 * g
                dx[n, c, vl, uh] += w2 * g
                dx[n, c, vh, ul] += w3 * g
                dx[n, c, vh, uh] += w4 * g


@njit(cache=True)
def roi_align_forward_kernel(x, rois, spatial_scale, sampling_ratio, aligned, y):
    """y[k, c, p, q] for every region, channel and bin."""
    K, C, PH, PW = y.shape
    for k in range(K):
        for p in range(PH):
            for q in range(PW):
                n, v, u, step_v, step_u, gh, gw = region(rois, k, p, q, PH, PW, spatial_scale, sampling_ratio, aligned)
                for c in range(C):
                    y[k, c, p, q] = bin_average(x, n, c, v, u, step_v, step_u, gh, gw)


@njit(cache=True, inline="always")
def spread_region(dy, rois, k, c, spatial_scale, sampling_ratio, aligned, dx):
    """Region k, channel c: every bin's dy spread back to the cells its samples read."""
    PH, PW = dy.shape[2], dy.shape[3]
    for p in range(PH):
        for q in range(PW):
            n, v, u, step_v, step_u, gh, gw = region(rois, k, p, q, PH, PW, spatial_scale, sampling_ratio, aligned)
            bin_spread(dx, n, c, v, u, step_v, step_u, gh, gw, dy[k, c, p, q])


@njit(cache=True)
def roi_align_backward_kernel(dy, rois, spatial_scale, sampling_ratio, aligned, dx):
    """Every region's bins spread back; dx (zeros) accumulates."""
    for k in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            spread_region(dy, rois, k, c, spatial_scale, sampling_ratio, aligned, dx)


def forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align. x (N, C, H, W) float; rois (K, 5) of x's dtype, rows (n, x1, y1, x2, y2)
    with 0 <= n < N; output_size (PH, PW). Returns y (K, C, PH, PW)."""
    PH, PW = output_size
    y = empty((rois.shape[0], x.shape[1], PH, PW), x.dtype, like=x)
    roi_align_forward_kernel(
        np.ascontiguousarray(x), np.ascontiguousarray(rois), float(spatial_scale), int(sampling_ratio), bool(aligned), y
    )
    return y


def backward(dy, rois, x_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """dx of x_shape = the transpose of the forward applied to dy (K, C, PH, PW)."""
    dx = zeros(x_shape, dy.dtype, like=dy)
    roi_align_backward_kernel(
        np.ascontiguousarray(dy),
        np.ascontiguousarray(rois),
        float(spatial_scale),
        int(sampling_ratio),
        bool(aligned),
        dx,
    )
    return dx
