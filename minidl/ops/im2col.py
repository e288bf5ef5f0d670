r"""im2col and col2im: turning a convolution into one matrix product.

In symbols:

$$\mathrm{cols}_{n,\,(c K_H + i) K_W + j,\; h' O_W + w'} = x_{n,\,c,\,h' s_h - p_h + i,\,w' s_w - p_w + j}, \qquad
  \langle \mathrm{im2col}(x), G \rangle = \langle x, \mathrm{col2im}(G) \rangle$$

(col2im is the adjoint: it adds every column back onto the pixels it was copied from).

A convolution slides a KH x KW window over the (zero-padded) input; at every output
position (oh, ow) it multiplies the window by the kernel and sums. ``im2col`` copies every
window of one image into a column of a matrix ``cols``, so that all those sums become a
single matrix product (see conv2d.py). One image x[n] of shape (C, H, W) gives

    cols[n]  of shape  (C * KH * KW,  OH * OW)
    row    r = (c * KH + i) * KW + j        one row per kernel element (c, i, j)
    column p = oh * OW + ow                  one column per output position (oh, ow)

    cols[n][r, p] = x[n, c, oh * sh - ph + i, ow * sw - pw + j]    (0 outside the image)

with the output size (``output_size``)

    OH = (H + 2 ph - KH) // sh + 1,      OW = (W + 2 pw - KW) // sw + 1.

How a patch becomes a column (one channel, H = W = 4, KH = KW = 2, stride 1, no padding,
so OH = OW = 3 and there are 9 patches):

    x[n, 0]              cols[n]: a column per patch, a row per kernel element (i, j)

     1  2  3  4                             p = 0  1  2  3  4  5  6  7  8
     5  6  7  8          (i, j) = (0, 0):       1  2  3  5  6  7  9 10 11
     9 10 11 12                   (0, 1):       2  3  4  6  7  8 10 11 12
    13 14 15 16                   (1, 0):       5  6  7  9 10 11 13 14 15
                                  (1, 1):       6  7  8 10 11 12 14 15 16

    patch (oh, ow) = (0, 0):  1  2   ->  column p = 0: (1, 2, 5, 6), the patch read row by row
                              5  6
    patch (oh, ow) = (0, 1):  2  3   ->  column p = 1: (2, 3, 6, 7)
                              6  7

Every pixel appears in up to KH * KW columns (here 6 appears 4 times): the columns overlap.

``col2im`` goes the other way: it adds every entry of the columns back onto the pixel it
was copied from. It is the ADJOINT (transpose) of im2col, not its inverse: for all x, c

    < im2col(x), c >  =  < x, col2im(c) >,

so col2im(im2col(x)) is x multiplied, pixel by pixel, by the number of windows that cover
it (pixel 6 above comes back as 4 * 6). That sum over overlapping windows is exactly what
the backward pass of a convolution needs: dx = col2im(dcols).

Arrays are NCHW, C-contiguous; ``stride = (sh, sw)`` and ``padding = (ph, pw)`` are pairs.
The kernels work on one image so that conv2d can call them inside its own loop over the
batch; ``im2col``/``col2im`` run them over a batch. The image is zero-padded first
(``pad_sample``): then every window lies inside the padded image, the copy needs no test
for "outside the image" at each entry, and the compiler can vectorise it (measured on 2
cores: im2col of a (64, 32, 16, 16) batch, 3x3, padding 1, 5.4 ms with the test and 3.4
ms padded; 2.1 -> 0.5 ms for (64, 3, 32, 32)). In the padded image xp, with
xp[c, h + ph, w + pw] = x[c, h, w]:

    cols[n][r, p] = xp[c, oh * sh + i, ow * sw + j]

and col2im adds into a padded image, then crops the border (``crop_sample``, the adjoint
of padding: the entries that fell on the padding are dropped).
"""

import numpy as np
from numba import njit

from .._threads import chunks, run_chunks


def output_size(H, KH, S, P):
    """The output length along one axis: ``(H + 2 P - KH) // S + 1``.

    H is the input length, KH the window (kernel) length, S the stride and P the zero
    padding added on each side. Shared by every sliding-window op (conv, pooling).
    """
    return (H + 2 * P - KH) // S + 1


@njit(cache=True)
def pad_sample(x, ph, pw, xp):
    """xp[c, h + ph, w + pw] = x[c, h, w], and 0 on a border ph rows high and pw columns wide.

    x is one image (C, H, W); xp (C, H + 2 ph, W + 2 pw) is overwritten.
    """
    C, H, W = x.shape
    xp[:] = 0.0
    for c in range(C):
        for h in range(H):
            for w in range(W):
                xp[c, h + ph, w + pw] = x[c, h, w]


@njit(cache=True)
def crop_sample(xp, ph, pw, x):
    """x[c, h, w] = xp[c, h + ph, w + pw]: the adjoint of ``pad_sample`` (the border is
    dropped). xp (C, H + 2 ph, W + 2 pw); x (C, H, W) is overwritten."""
    C, H, W = x.shape
    for c in range(C):
        for h in range(H):
            for w in range(W):
                x[c, h, w] = xp[c, h + ph, w + pw]


@njit(cache=True)
def im2col_sample(xp, KH, KW, sh, sw, OH, OW, cols):
    """cols[(c*KH + i)*KW + j, oh*OW + ow] = xp[c, oh*sh + i, ow*sw + j].

    xp is one image already zero-padded by ``pad_sample``, (C, H + 2 ph, W + 2 pw), so
    that this is x[c, oh*sh - ph + i, ow*sw - pw + j] (0 outside the image);
    cols (C*KH*KW, OH*OW) is overwritten.

    The innermost loop appears twice, the general ``ow * sw + j`` and the same copy for
    stride 1, ``ow + j``: sw is only known when the kernel runs, so in the general form the
    compiler must read xp one entry at a time, while with stride 1 it sees consecutive
    pixels and copies several at once with vector instructions (measured on 2 cores, one
    thread, pad + im2col of 64 images: (32, 16, 16) 3x3 3.9 -> 1.6 ms, (1, 28, 28) 5x5
    0.83 -> 0.31 ms). Stride 1 is most convolutions.
    """
    C = xp.shape[0]
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for oh in range(OH):
                    if sw == 1:  # the same copy, with ow * sw written ow (see the docstring)
                        for ow in range(OW):
                            cols[r, oh * OW + ow] = xp[c, oh * sh + i, ow + j]
                    else:
                        for ow in range(OW):
                            cols[r, oh * OW + ow] = xp[c, oh * sh + i, ow * sw + j]


@njit(cache=True)
def col2im_sample(cols, KH, KW, sh, sw, OH, OW, xp):
    """xp[c, h, w] = sum of cols[(c*KH + i)*KW + j, oh*OW + ow] over all (i, j, oh, ow) with
    oh*sh + i = h and ow*sw + j = w: the adjoint of ``im2col_sample``.

    cols is (C*KH*KW, OH*OW); xp, one padded image (C, H + 2 ph, W + 2 pw), is
    overwritten; ``crop_sample`` then drops its border (the entries that fell on the
    padding have no pixel).
    """
    C = xp.shape[0]
    xp[:] = 0.0
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for oh in range(OH):  # overlapping windows add up
                    if sw == 1:  # the same sum, with ow * sw written ow (see im2col_sample)
                        for ow in range(OW):
                            xp[c, oh * sh + i, ow + j] += cols[r, oh * OW + ow]
                    else:
                        for ow in range(OW):
                            xp[c, oh * sh + i, ow * sw + j] += cols[r, oh * OW + ow]


# --- the fast form at stride 1: wide rows ----------------------------------------------------
#
# im2col_sample's innermost loop copies one row of one window row, OW pixels (10 for
# LeNet-5's second layer), and a copy that short costs more to start than to do. At stride 1
# the columns can be laid out so that every row of cols is ONE contiguous piece of the padded
# image: give each output row Wp = W + 2 pw columns instead of OW, column q = oh * Wp + ow.
# Kernel element (c, i, j) of window (oh, ow) is xp[c, oh + i, ow + j], which sits in the
# flattened image at (c * Hp + i) * Wp + j + q: the row of cols for (c, i, j) is the run
#
#     cols[(c*KH + i)*KW + j, q] = xp[c].flat[i * Wp + j + q]      for q < L = (OH - 1) * Wp + OW
#
# The columns q = oh * Wp + ow with ow >= OW are extra windows that wrap past the right edge
# of the image into the next row; they are never used (the forward drops their products,
# the backward gives them a zero gradient). In the 4 x 4 picture above (Wp = 4, OW = 3,
# L = 11), columns 3 and 7 are those: column 3 is (4, 5, 8, 9).
#
#     wide column  q = 0  1  2 (3)  4  5  6 (7)  8  9 10
#     window  (oh, ow) = 00 01 02     10 11 12     20 21 22
#
# The price is (L - OH*OW) more columns in every matrix product, about (KW - 1) / OW: 36 %
# for LeNet-5's second layer (OW = 10, Wp = 14), 14 % for its first (OW = 28, Wp = 32). So
# conv2d takes wide rows where rows are short, and for the shifted products, which need
# them (conv2d.py, ``_wide``).
#
# Where rows are short, the copies are what wide rows save and their extra columns cost
# little; where rows are long, the copies were fast already and the extra columns cost more
# than they save. Measured on 2 cores (Intel Xeon, one thread, 64 images), wide rows against
# im2col's layout: LeNet-5's second layer (OW = 10) forward 0.95 -> 0.71 ms and input
# gradient 1.08 -> 0.77 ms; its first (OW = 28) weight gradient 0.58 -> 1.06 ms; a 3x3
# convolution 32 -> 64 channels on 16 x 16 forward 9.2 -> 10.2 ms.

WIDE_BELOW = 16  # output widths for which conv2d takes wide rows at stride 1 (conv2d._wide)


@njit(cache=True)
def im2col_wide_sample(xp, KH, KW, q0, cols):
    """Stride 1: cols[(c*KH + i)*KW + j, q] = xp[c].flat[i*Wp + j + q0 + q], the wide columns
    q0, q0 + 1, ... (all L of them: q0 = 0 and cols (C*KH*KW, L), L = (OH - 1)*Wp + OW).

    xp (C, Hp, Wp), padded, C-contiguous; cols (C*KH*KW, number of columns), overwritten.
    Column oh*Wp + ow (ow < OW) equals column oh*OW + ow of ``im2col_sample``.

    The copy names its source and destination as two 1-D views, ``row`` and ``run``: the
    compiler then sees two unit-stride arrays and moves many floats per instruction
    (measured, one image of LeNet-5's second layer: 4.2 us, against 11.6 us for the same
    copy written cols[r, q] = xf[start + q]).
    """
    C, Hp, Wp = xp.shape
    L = cols.shape[1]
    xf = xp.reshape(C * Hp * Wp)
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                row = cols[(c * KH + i) * KW + j]  # one row of cols and the run of the
                run = xf[(c * Hp + i) * Wp + j + q0 :]  # image it copies, as 1-D views
                for q in range(L):
                    row[q] = run[q]


@njit(cache=True)
def col2im_wide_sample(cols, KH, KW, q0, xp):
    """The adjoint of ``im2col_wide_sample``: xp[c].flat[i*Wp + j + q0 + q] +=
    cols[(c*KH + i)*KW + j, q], the wide columns q0, q0 + 1, ... added onto xp.

    cols (C*KH*KW, number of columns), whose wrapped columns (ow >= OW) must be 0;
    xp (C, Hp, Wp), C-contiguous: the caller sets it to 0 before the first block.
    """
    C, Hp, Wp = xp.shape
    L = cols.shape[1]
    xf = xp.reshape(C * Hp * Wp)
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                row = cols[(c * KH + i) * KW + j]
                run = xf[(c * Hp + i) * Wp + j + q0 :]
                for q in range(L):
                    run[q] += row[q]


@njit(cache=True, nogil=True)
def im2col_kernel(t, T, x, KH, KW, sh, sw, ph, pw, OH, OW, cols):
    """pad + ``im2col_sample`` for the images of chunk t of T (minidl/_threads.py)."""
    N, C, H, W = x.shape
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)  # this chunk's padded image
    for n in range(t * N // T, (t + 1) * N // T):
        pad_sample(x[n], ph, pw, xp)
        im2col_sample(xp, KH, KW, sh, sw, OH, OW, cols[n])


@njit(cache=True, nogil=True)
def col2im_kernel(t, T, cols, KH, KW, sh, sw, ph, pw, OH, OW, x):
    """``col2im_sample`` + crop for the images of chunk t of T (minidl/_threads.py)."""
    N, C, H, W = x.shape
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        col2im_sample(cols[n], KH, KW, sh, sw, OH, OW, xp)
        crop_sample(xp, ph, pw, x[n])


def im2col(x, KH, KW, stride, padding):
    """The columns of every KH x KW window of ``x``.

    x: (N, C, H, W); stride = (sh, sw); padding = (ph, pw).
    Returns cols: (N, C*KH*KW, OH*OW), with ``cols[n, (c*KH + i)*KW + j, oh*OW + ow] =
    x[n, c, oh*sh - ph + i, ow*sw - pw + j]`` (zero where that falls on the padding).
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    cols = np.empty((N, C * KH * KW, OH * OW), dtype=x.dtype)
    run_chunks(im2col_kernel, chunks(N), x, KH, KW, sh, sw, ph, pw, OH, OW, cols)
    return cols


def col2im(cols, x_shape, KH, KW, stride, padding):
    """The adjoint of ``im2col``: every column entry added back onto its pixel.

    cols: (N, C*KH*KW, OH*OW); x_shape = (N, C, H, W). Returns x: (N, C, H, W), where
    each pixel holds the sum of the column entries copied from it (overlapping windows
    accumulate; this is not the inverse of im2col).
    """
    cols = np.ascontiguousarray(cols)
    N, C, H, W = x_shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    if cols.shape != (N, C * KH * KW, OH * OW):  # the kernel reads cols by these sizes
        raise ValueError(f"col2im: cols must have shape {(N, C * KH * KW, OH * OW)}, got {cols.shape}")
    x = np.empty((N, C, H, W), dtype=cols.dtype)
    run_chunks(col2im_kernel, chunks(N), cols, KH, KW, sh, sw, ph, pw, OH, OW, x)
    return x
