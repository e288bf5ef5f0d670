"""im2col and col2im on the GPU (what they are, and why col2im is the adjoint of im2col:
``minidl/ops/im2col.py``).

    im2col:  thread q computes one entry cols[n, r, p] of the (N, C*KH*KW, OH*OW) columns:
             it reads the one pixel that the entry copies (or 0 on the padding)
    col2im:  thread q computes one pixel x[n, c, h, w]: a GATHER of every column entry that
             was copied from this pixel. The CPU adds each entry onto its pixel (a
             scatter); on the GPU, two threads adding onto one pixel would race, so each
             pixel instead looks up its entries: kernel element (i, j) put it under the
             window at oh = (h + ph - i) / sh, ow = (w + pw - j) / sw, when those divide
             exactly and fall inside the output. No atomics, the same sum at every run.
"""

from numba import cuda

from ..device import empty
from ..ops.im2col import output_size
from ._launch import launch


@cuda.jit
def im2col_kernel(x, KH, KW, sh, sw, ph, pw, OH, OW, cols):
    """Thread q: entry (n, r, p) of cols, r = (c*KH + i)*KW + j, p = oh*OW + ow:
    cols[n, r, p] = x[n, c, oh*sh - ph + i, ow*sw - pw + j], 0 outside the image."""
    N, C, H, W = x.shape
    R, P = cols.shape[1], cols.shape[2]
    for q in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        n, r, p = q // (R * P), q // P % R, q % P
        c, i, j = r // (KH * KW), r // KW % KH, r % KW
        h = p // OW * sh - ph + i
        w = p % OW * sw - pw + j
        if 0 <= h < H and 0 <= w < W:
            cols[n, r, p] = x[n, c, h, w]
        else:
            cols[n, r, p] = 0.0  # zero padding


@cuda.jit
def col2im_kernel(cols, KH, KW, sh, sw, ph, pw, OH, OW, x):
    """Thread q: pixel (n, c, h, w); x[n, c, h, w] = the sum of cols[n, (c*KH + i)*KW + j,
    oh*OW + ow] over the (i, j, oh, ow) with oh*sh - ph + i = h and ow*sw - pw + j = w."""
    N, C, H, W = x.shape
    for q in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, h, w = q // (C * H * W), q // (H * W) % C, q // W % H, q % W
        acc = 0.0
        for i in range(KH):
            if (h + ph - i) % sh != 0:
                continue
            oh = (h + ph - i) // sh
            if oh < 0 or oh >= OH:
                continue
            for j in range(KW):
                if (w + pw - j) % sw != 0:
                    continue
                ow = (w + pw - j) // sw
                if 0 <= ow < OW:
                    acc += cols[n, (c * KH + i) * KW + j, oh * OW + ow]
        x[n, c, h, w] = acc


def im2col(x, KH, KW, stride, padding):
    """The columns of every KH x KW window of the device array x (N, C, H, W):
    (N, C*KH*KW, OH*OW)."""
    N, C, H, W = x.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    cols = empty((N, C * KH * KW, OH * OW), x.dtype, like=x)
    launch(im2col_kernel, cols.size, x, KH, KW, sh, sw, ph, pw, OH, OW, cols)
    return cols


def col2im(cols, x_shape, KH, KW, stride, padding):
    """The adjoint of ``im2col``: every column entry added back onto its pixel (gathered)."""
    N, C, H, W = x_shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    x = empty((N, C, H, W), cols.dtype, like=cols)
    launch(col2im_kernel, x.size, cols, KH, KW, sh, sw, ph, pw, OH, OW, x)
    return x
