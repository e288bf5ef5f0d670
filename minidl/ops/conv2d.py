r"""2-D convolution (cross-correlation, as in PyTorch), forward and backward.

In symbols:

$$y_{n,o,h',w'} = b_o + \sum_{c=0}^{C-1} \sum_{i=0}^{K_H-1} \sum_{j=0}^{K_W-1}
  w_{o,c,i,j}\; x_{n,\,c,\,h' s_h - p_h + i,\,w' s_w - p_w + j}, \qquad O_H = \Big\lfloor \frac{H + 2 p_h - K_H}{s_h} \Big\rfloor + 1$$

$$\frac{\partial L}{\partial w_{o,c,i,j}} = \sum_{n,h',w'} \delta_{n,o,h',w'}\; x_{n,\,c,\,h' s_h - p_h + i,\,w' s_w - p_w + j}, \quad
  \frac{\partial L}{\partial b_o} = \sum_{n,h',w'} \delta_{n,o,h',w'}$$

$$\frac{\partial L}{\partial x_{n,c,h,w}} = \sum_{o,h',w',i,j \,:\, h' s_h - p_h + i = h,\ w' s_w - p_w + j = w} \delta_{n,o,h',w'}\; w_{o,c,i,j}$$

with $\delta = \partial L / \partial y$ (written ``dy`` below) and $x$ taken as 0 outside the image.

Forward. A batch x of N images with C channels, a bank of C_out kernels w, a bias b:

    y[n, co, oh, ow] = b[co] + sum_{c < C} sum_{i < KH} sum_{j < KW}
                               w[co, c, i, j] * x[n, c, oh*sh - ph + i, ow*sw - pw + j]

where x is taken as 0 outside the image (zero padding of ph rows and pw columns on each
side) and the kernel is not flipped (a cross-correlation: the "convolution" of deep
learning). Shapes, with stride = (sh, sw) and padding = (ph, pw):

    x (N, C, H, W)    w (C_out, C, KH, KW)    b (C_out,)    y (N, C_out, OH, OW)
    OH = (H + 2 ph - KH) // sh + 1            OW = (W + 2 pw - KW) // sw + 1

As one matrix product. im2col (im2col.py) copies every window of x[n] into a column:
cols[n] has shape (C*KH*KW, OH*OW), row (c*KH + i)*KW + j, column oh*OW + ow. Lay the
kernels out as the rows of a matrix w_mat = w.reshape(C_out, C*KH*KW); then the triple
sum above is (row co of w_mat) times (column oh*OW + ow of cols[n]), and all of them at
once are one matrix product per image:

    Y[n] = w_mat @ cols[n] + b      (C_out, OH*OW) = (C_out, C*KH*KW) @ (C*KH*KW, OH*OW)

Y[n] is already y[n] in NCHW order (reshape it to (C_out, OH, OW)): no transpose.

Backward. Given dy = dl/dy (shape of y, dY[n] = dy[n].reshape(C_out, OH*OW)), the chain
rule through that product gives the three gradients

    dw_mat   = sum_n dY[n] @ cols[n]^T            dw = dw_mat.reshape(C_out, C, KH, KW)
    db[co]   = sum_n sum_{oh, ow} dy[n, co, oh, ow]
    dx[n]    = col2im(w_mat^T @ dY[n])

With indices: dw[co, c, i, j] = sum_{n, oh, ow} dy[n, co, oh, ow] *
x[n, c, oh*sh - ph + i, ow*sw - pw + j]; and w_mat^T @ dY[n] is the gradient of the
columns, which col2im adds back onto the pixels they were copied from, so dx[n, c, h, w]
collects dy[n, co, oh, ow] * w[co, c, i, j] from every window that put pixel (h, w) under
kernel element (i, j) (overlapping windows add up).

Threading policy (minidl/_threads.py): the batch is cut into T chunks, T = the number of
threads, which ``run_chunks`` runs side by side, and every matrix product (``gemm`` inside
the kernels, minidl/_blas.py) is single-threaded BLAS on one image. Each chunk reuses one
scratch ``cols`` for the images of its chunk, so an image's columns are multiplied while
they are still in cache and the (N, C*KH*KW, OH*OW) matrix is never stored: backward
recomputes the columns from x (one more im2col, far less memory). The image is zero-padded
once (``pad_sample``) so that im2col copies without testing each entry for the border. At
stride 1, for narrow outputs or many channels (``_wide``), the columns are in "wide rows",
each row of cols one contiguous run of the padded image, at the price of a few wrapped
windows whose products are dropped (im2col.py); those kernels make and use them one BLOCK of
columns at a time, so that a block is still in cache when BLAS reads it, and from
``SHIFTED_FROM`` channels on they do not make them at all (below). With BLAS's own threads
also on, a (64, 32, 16, 16) -> 64 conv took 28 ms instead of 16 ms on 2 cores: two thread
pools fighting over the same cores. Times against PyTorch: benchmarks/README.md (``python
benchmarks/run.py --only conv``).

Shifted products (stride 1, at least ``SHIFTED_FROM`` input channels). In wide rows
(im2col.py), the row of cols for kernel element (c, i, j) is one run of the padded image
flattened to xf (C, Hp*Wp): cols[(c*KH + i)*KW + j, q] = xf[c, i*Wp + j + q]. For one (i, j),
the C rows c = 0 .. C-1 are therefore a (C, L) block of xf that is already in memory,
xf[:, i*Wp + j : i*Wp + j + L] (the image shifted by (i, j)), and the product w_mat @ cols
splits, by the rows of cols, into KH*KW products with no copy at all:

    Y_wide = sum_{i, j} W_ij @ xf[:, i*Wp + j : i*Wp + j + L]      W_ij = w[:, :, i, j]  (C_out, C)
    dxf[:, i*Wp + j : i*Wp + j + L] += W_ij^T @ dY_wide              for every (i, j)

BLAS reads such a block in place (``gemm``, minidl/_blas.py: a view with a row distance)
and adds each product onto the last. Each product sums over C alone, so it takes enough
channels to keep BLAS busy; with few (the first layers of a network: 1 or 3) im2col's one
long product is faster (``wide_forward_kernel`` and ``wide_input_grad_kernel`` do one or
the other, block by block). The weight gradient keeps im2col's product (one product summing
over L beat KH*KW of them), with the columns in wide rows made and multiplied one BLOCK of
columns at a time (``wide_weight_grad_kernel``). Measured on 2 cores (Intel Xeon, 3x3
kernels, time shifted / im2col, the two taking turns): forward of 32 -> 64 channels 0.84-0.87 on 16 x 16 (64 images) and 0.76-0.79
on 32 x 32 (32 images), 64 -> 64 on 16 x 16 0.95-0.99, 16 -> 16 on 16 x 16 0.78; the input
gradient 0.63-0.88 for 8 to 32 channels; forward and backward together 0.82-0.88. Below 8
channels it loses (forward 1.1-1.2 with 6, 1.7-1.9 with 3; input gradient 1.3-1.5 with 3 to
6), and the weight gradient as KH*KW products took 1.1-1.3 of im2col's time; in blocks of
wide columns it takes 0.87-0.95 of the time of whole-image columns at one thread, 0.90-1.00
at two (8 to 64 channels; a block copied into a strided view instead of a contiguous buffer
took 1.04-1.24: the copy no longer vectorised).

Which kernels run (forward, input gradient, weight gradient; ``_wide`` decides):

    MINIDL_REFERENCE=1                  reference_forward_kernel, reference_backward_kernel
    stride 1, C >= SHIFTED_FROM         wide_*_kernel: the shifted products (dw: wide columns)
    stride 1, OW < WIDE_BELOW           wide_*_kernel: one product per block of wide columns
    any other                           conv2d_forward_kernel, col2im_wT_dy_kernel,
                                        weight_bias_grad_kernel: im2col's layout, image by image

The file shows the two forms in that order: first the textbook loops (``reference_*``),
which mirror the sums above index for index and are what ``MINIDL_REFERENCE=1`` runs
(see minidl/reference.py); then the fast kernels, tested equal to them.

``backward_input`` (dx = col2im(w_mat^T dY)) and ``backward_params`` (dw, db) are separate
functions: the transposed convolution's forward pass is ``backward_input``, and its weight
gradient is ``backward_params`` with the roles of x and dy exchanged.
"""

import numpy as np
from numba import njit

from .. import reference
from .._blas import gemm
from .._threads import chunks, run_chunks
from .im2col import (
    WIDE_BELOW,
    col2im_sample,
    col2im_wide_sample,
    crop_sample,
    im2col_sample,
    im2col_wide_sample,
    output_size,
    pad_sample,
)

# --- the textbook form: the sums of the docstring as loops ------------------------------------


@njit(cache=True)
def reference_forward_kernel(x, w, b, sh, sw, ph, pw, y):
    """y[n, co, oh, ow] = b[co] + sum_{c, i, j} w[co, c, i, j] * x[n, c, oh*sh - ph + i, ow*sw - pw + j].

    x (N, C, H, W); w (C_out, C, KH, KW); b (C_out,); y (N, C_out, OH, OW), overwritten.
    A pixel outside the image is 0 (zero padding), so its term is skipped.
    """
    N, C, H, W = x.shape
    C_out, _, KH, KW = w.shape
    OH, OW = y.shape[2], y.shape[3]
    for n in range(N):
        for co in range(C_out):
            for oh in range(OH):
                for ow in range(OW):
                    s = b[co]
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                ih, iw = oh * sh - ph + i, ow * sw - pw + j
                                if 0 <= ih < H and 0 <= iw < W:
                                    s += w[co, c, i, j] * x[n, c, ih, iw]
                    y[n, co, oh, ow] = s


@njit(cache=True)
def reference_backward_kernel(dy, x, w, sh, sw, ph, pw, dx, dw, db):
    """Backward through the same sum, term by term: y[n, co, oh, ow] contains the term
    w[co, c, i, j] * x[n, c, ih, iw], so dy[n, co, oh, ow] flows to

        dx[n, c, ih, iw] += dy[n, co, oh, ow] * w[co, c, i, j]
        dw[co, c, i, j]  += dy[n, co, oh, ow] * x[n, c, ih, iw]
        db[co]           += dy[n, co, oh, ow]

    dy (N, C_out, OH, OW); x, w as in forward; dx, dw, db start at zero.
    """
    N, C, H, W = x.shape
    C_out, _, KH, KW = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for n in range(N):
        for co in range(C_out):
            for oh in range(OH):
                for ow in range(OW):
                    g = dy[n, co, oh, ow]
                    db[co] += g
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                ih, iw = oh * sh - ph + i, ow * sw - pw + j
                                if 0 <= ih < H and 0 <= iw < W:
                                    dx[n, c, ih, iw] += g * w[co, c, i, j]
                                    dw[co, c, i, j] += g * x[n, c, ih, iw]


def _reference_backward(dy, x, w, stride, padding):
    """(dx, dw, db) from ``reference_backward_kernel``: the loops that the fast
    ``backward_input`` and ``backward_params`` must equal."""
    dy, x, w = np.ascontiguousarray(dy), np.ascontiguousarray(x), np.ascontiguousarray(w)
    (sh, sw), (ph, pw) = stride, padding
    dx, dw = np.zeros(x.shape, dy.dtype), np.zeros(w.shape, dy.dtype)
    db = np.zeros(w.shape[0], dy.dtype)
    reference_backward_kernel(dy, x, w, sh, sw, ph, pw, dx, dw, db)
    return dx, dw, db


# --- the fast form: im2col + one matrix product per image, the batch in chunks --------------


@njit(cache=True, nogil=True)
def conv2d_forward_kernel(t, T, x, w_mat, b, KH, KW, sh, sw, ph, pw, OH, OW, y):
    """y[n] = w_mat @ im2col(x[n]) + b for the images n of chunk t of T.

    x (N, C, H, W); w_mat (C_out, C*KH*KW); b (C_out,); y (N, C_out, OH*OW), overwritten:
    BLAS writes the product straight into y[n], then the bias is added. (An earlier version
    had BLAS compute the transposed product Y^T = cols^T @ w_mat^T for fewer than 32 output
    channels, measured faster then; with SciPy 1.17's OpenBLAS 0.3.30 the straight product
    is faster for every shape of the benchmarks. Which form of a product BLAS runs fastest
    depends on the BLAS build: ``benchmarks/`` is where to check.)
    """
    N, C, H, W = x.shape
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)  # this chunk's scratch: the
    cols = np.empty((w_mat.shape[1], OH * OW), dtype=x.dtype)  # padded image, its columns
    for n in range(t * N // T, (t + 1) * N // T):
        pad_sample(x[n], ph, pw, xp)
        im2col_sample(xp, KH, KW, sh, sw, OH, OW, cols)
        gemm(1.0, w_mat[:, :], cols[:, :], 0.0, y[n, :, :])  # (C_out, C*KH*KW) @ (C*KH*KW, OH*OW)
        add_bias_sample(y[n], b)


@njit(cache=True, inline="always")  # pasted into the kernels: see the docstring
def add_bias_sample(y, b):
    """y[co, p] += b[co]: one image's output (C_out, OH*OW) gets its bias.

    (``inline="always"`` on this and the other small helpers of the kernels: Numba pastes
    them into each kernel that calls them instead of compiling each one on its own, which
    cost ~0.2 s apiece at a first run; measured, the demo's first run compiled 13.0-14.7 s
    with it, 15.1-16.3 s without, three runs each, taking turns.)"""
    for co in range(y.shape[0]):
        for p in range(y.shape[1]):
            y[co, p] += b[co]


@njit(cache=True, nogil=True)
def weight_bias_grad_kernel(t, T, dy, x, KH, KW, sh, sw, ph, pw, OH, OW, dwT_parts, db_parts):
    """dwT_parts[t] += im2col(x[n]) @ dY[n]^T and db_parts[t, co] += the sum of dy[n, co, :],
    over the images n of chunk t of T.

    dy (N, C_out, OH*OW); x (N, C, H, W); dwT_parts (T, C*KH*KW, C_out), the transposed
    weight gradient, and db_parts (T, C_out) start at zero. The caller adds up the T parts.
    BLAS computes the transposed product dw^T = cols @ dY^T and adds it on (beta = 1): for
    few output channels it is the faster form (measured with SciPy 1.17's OpenBLAS, one
    product of LeNet's second layer: 6.5 us against 9.7 us for dY @ cols^T; for its first,
    equal).
    """
    N, C, H, W = x.shape
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    cols = np.empty((dwT_parts.shape[1], OH * OW), dtype=x.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        pad_sample(x[n], ph, pw, xp)
        im2col_sample(xp, KH, KW, sh, sw, OH, OW, cols)
        gemm(1.0, cols[:, :], dy[n, :, :].T, 1.0, dwT_parts[t, :, :])  # (C*KH*KW, OH*OW) @ (OH*OW, C_out)
        add_bias_grad_sample(dy[n], db_parts[t])


@njit(cache=True, fastmath={"reassoc"})  # the sums in any order (see ops/batchnorm.py)
def add_bias_grad_sample(dy, db):
    """db[co] += sum_p dy[co, p]: one image's share of the bias gradient. dy (C_out, OH*OW);
    db (C_out,). (A function of its own, not pasted into the kernels: the reordering allowed
    here would otherwise be the kernel's flag, and ``gemm``, which takes its caller's flags,
    would be compiled twice at a first run, with and without it.)"""
    for co in range(dy.shape[0]):
        s = 0.0
        for p in range(dy.shape[1]):
            s += dy[co, p]
        db[co] += s


@njit(cache=True, nogil=True)
def col2im_wT_dy_kernel(t, T, dy, w_mat, KH, KW, sh, sw, ph, pw, OH, OW, dx):
    """dx[n] = col2im(w_mat^T @ dY[n]) for the images n of chunk t of T.

    dy (N, C_out, OH*OW); w_mat (C_out, C*KH*KW); dx (N, C, H, W), overwritten.
    """
    N, C, H, W = dx.shape
    dxp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)  # dx[n], padded
    dcols = np.empty((w_mat.shape[1], OH * OW), dtype=dy.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        gemm(1.0, w_mat[:, :].T, dy[n, :, :], 0.0, dcols[:, :])  # (C*KH*KW, C_out) @ (C_out, OH*OW)
        col2im_sample(dcols, KH, KW, sh, sw, OH, OW, dxp)
        crop_sample(dxp, ph, pw, dx[n])


# --- the fast form at stride 1: wide rows, a block of columns at a time (see the docstring) ----

SHIFTED_FROM = 8  # input channels from which the wide kernels take the shifted products
BLOCK = 256  # columns of the output computed at a time: that block stays in cache while it
# is made and used (measured, 32 -> 64 channels on 32 x 32, one thread: shifted forward
# 0.86 -> 0.70 of im2col's time, input gradient 1.3 -> 0.85)


def _wide(stride, C, OW):
    """Whether the convolution takes the wide-row kernels: stride 1 and either at least
    SHIFTED_FROM input channels (the shifted products) or an output narrower than
    WIDE_BELOW (im2col.py: there wide rows make im2col's copies faster)."""
    return tuple(stride) == (1, 1) and (C >= SHIFTED_FROM or OW < WIDE_BELOW)


def _kernel_slices(w):
    """w_k (KH, KW, C_out, C) with w_k[i, j] = W_ij = w[:, :, i, j], each slice contiguous
    (BLAS reads it as a matrix or, transposed, as its transpose)."""
    return np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)))


@njit(cache=True, inline="always")  # pasted into the kernels (see add_bias_sample)
def column_block(flat, K, q0, q1):
    """A (K, q1 - q0) matrix in the scratch ``flat``, contiguous: one block of wide columns.
    (Contiguous so that the copies into it vectorise: made in a strided view of a wider
    array instead, the weight gradient took 1.04-1.24 of the time.)"""
    return flat[: K * (q1 - q0)].reshape(K, q1 - q0)


@njit(cache=True, nogil=True)
def wide_forward_kernel(t, T, x, w_mat, w_k, b, KH, KW, ph, pw, OH, OW, y):
    """Stride 1: y[n] = w_mat @ cols[n] + b in wide rows, for the images n of chunk t of T,
    one BLOCK of columns q0 .. q1 - 1 at a time, each block in one of two ways:

      fewer than SHIFTED_FROM channels:  Y[:, q0:q1] = w_mat @ (those wide columns)
      else, the shifted products:        Y[:, q0:q1] = sum_{i,j} W_ij @ xf[:, i*Wp + j + q0 : i*Wp + j + q1]

    where xf is x[n] padded and flattened to (C, Hp*Wp): no columns at all. x (N, C, H, W);
    w_mat (C_out, C*KH*KW); w_k (KH, KW, C_out, C), w_k[i, j] = W_ij = w[:, :, i, j];
    b (C_out,); y (N, C_out, OH*OW), overwritten. Y is y[n] itself when Wp = OW, else a
    scratch whose columns of real windows are then kept (``narrow_sample``).
    """
    N, C, H, W = x.shape
    C_out, K = w_mat.shape
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    Hp, Wp = xp.shape[1], xp.shape[2]
    xf = xp.reshape(C, Hp * Wp)  # channel c of the padded image is row c
    L = (OH - 1) * Wp + OW
    flat = np.empty(K * min(BLOCK, L) if C < SHIFTED_FROM else 0, dtype=x.dtype)  # one block of columns
    Y_wide = np.empty((C_out, L if Wp != OW else 0), dtype=x.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        pad_sample(x[n], ph, pw, xp)
        Y = y[n] if Wp == OW else Y_wide
        for q0 in range(0, L, BLOCK):
            q1 = min(q0 + BLOCK, L)
            if C < SHIFTED_FROM:
                cols = column_block(flat, K, q0, q1)
                im2col_wide_sample(xp, KH, KW, q0, cols)
                gemm(1.0, w_mat[:, :], cols[:, :], 0.0, Y[:, q0:q1])  # (C_out, K) @ (K, block)
                continue
            for i in range(KH):
                for j in range(KW):
                    s = i * Wp + j  # the shift of kernel element (i, j)
                    first = i == 0 and j == 0  # overwrite Y, then add onto it
                    gemm(1.0, w_k[i, j, :, :], xf[:, s + q0 : s + q1], 0.0 if first else 1.0, Y[:, q0:q1])
        if Wp != OW:
            narrow_sample(Y, OH, OW, Wp, y[n])
        add_bias_sample(y[n], b)


@njit(cache=True, inline="always")  # pasted into the kernels (see add_bias_sample)
def narrow_sample(Y, OH, OW, P, y):
    """y[co, oh*OW + ow] = Y[co, oh*P + ow]: the columns of real windows (ow < OW) of a
    product in wide rows (P = Wp). Y (C_out, L); y (C_out, OH*OW), overwritten."""
    for co in range(Y.shape[0]):
        for oh in range(OH):
            for ow in range(OW):
                y[co, oh * OW + ow] = Y[co, oh * P + ow]


@njit(cache=True, inline="always")  # pasted into the kernels (see add_bias_sample)
def widen_sample(dy, OH, OW, P, dY):
    """One image's output gradient in wide rows, the adjoint of ``narrow_sample``: dy
    (C_out, OH*OW) itself when P = OW, else dY (C_out, L) with dY[co, oh*P + ow] =
    dy[co, oh*OW + ow]; dY's wrapped columns (ow >= OW) are not written: the caller sets them
    to 0 once, so they add nothing to the products (where P = OW, dY has no columns)."""
    if P == OW:
        return dy
    for co in range(dy.shape[0]):
        for oh in range(OH):
            for ow in range(OW):
                dY[co, oh * P + ow] = dy[co, oh * OW + ow]
    return dY


@njit(cache=True, nogil=True)
def wide_input_grad_kernel(t, T, dy, w_mat, w_k, KH, KW, ph, pw, OH, OW, dx):
    """Stride 1: dx[n] = col2im(w_mat^T @ dY[n]) in wide rows, for the images n of chunk t
    of T: the padded gradient dxp collects one BLOCK of columns q0 .. q1 - 1 at a time, in
    one of two ways, then its border is cropped:

      fewer than SHIFTED_FROM channels:  col2im of those columns of w_mat^T @ dY
      else, the shifted products:        dxf[:, i*Wp + j + q0 : i*Wp + j + q1] += W_ij^T @ dY[:, q0:q1]

    where dxf is dxp flattened to (C, Hp*Wp). dy (N, C_out, OH*OW); w_mat, w_k as in
    ``wide_forward_kernel``; dx (N, C, H, W), overwritten. dY is dy[n] in wide rows, its
    wrapped columns 0 (they add nothing).
    """
    N, C, H, W = dx.shape
    C_out, K = w_mat.shape
    dxp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    Hp, Wp = dxp.shape[1], dxp.shape[2]
    dxf = dxp.reshape(C, Hp * Wp)
    L = (OH - 1) * Wp + OW
    flat = np.empty(K * min(BLOCK, L) if C < SHIFTED_FROM else 0, dtype=dy.dtype)
    dY = np.zeros((C_out, L if Wp != OW else 0), dtype=dy.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        dY_n = widen_sample(dy[n], OH, OW, Wp, dY)
        dxp[:] = 0.0
        for q0 in range(0, L, BLOCK):
            q1 = min(q0 + BLOCK, L)
            if C < SHIFTED_FROM:
                dcols = column_block(flat, K, q0, q1)
                gemm(1.0, w_mat[:, :].T, dY_n[:, q0:q1], 0.0, dcols[:, :])  # (K, C_out) @ (C_out, block)
                col2im_wide_sample(dcols, KH, KW, q0, dxp)
                continue
            for i in range(KH):
                for j in range(KW):
                    s = i * Wp + j
                    gemm(1.0, w_k[i, j, :, :].T, dY_n[:, q0:q1], 1.0, dxf[:, s + q0 : s + q1])
        crop_sample(dxp, ph, pw, dx[n])


@njit(cache=True, nogil=True)
def wide_weight_grad_kernel(t, T, dy, x, KH, KW, ph, pw, OH, OW, dwT_parts, db_parts):
    """Stride 1: dwT_parts[t] += cols[n][:, block] @ dY[n][:, block]^T over the BLOCKs of
    wide columns, and db_parts[t, co] += the sum of dy[n, co, :], for the images n of chunk t
    of T: the weight gradient of ``weight_bias_grad_kernel`` with the columns in wide rows,
    made one block at a time so that they are still in cache when BLAS multiplies them (one
    image's columns of a 64-channel 32 x 32 convolution are 2.4 MB, more than L2). For every
    C: as KH*KW shifted products it took 1.1-1.3 of this one product's time.

    dy (N, C_out, OH*OW); x (N, C, H, W); dwT_parts (T, C*KH*KW, C_out) and db_parts
    (T, C_out) start at zero. dY's wrapped columns are 0.
    """
    N, C, H, W = x.shape
    K, C_out = dwT_parts.shape[1], dwT_parts.shape[2]
    xp = np.empty((C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    Wp = xp.shape[2]
    L = (OH - 1) * Wp + OW
    flat = np.empty(K * min(BLOCK, L), dtype=x.dtype)  # room for one block of columns
    dY = np.zeros((C_out, L if Wp != OW else 0), dtype=dy.dtype)
    for n in range(t * N // T, (t + 1) * N // T):
        pad_sample(x[n], ph, pw, xp)
        dY_n = widen_sample(dy[n], OH, OW, Wp, dY)
        for q0 in range(0, L, BLOCK):
            q1 = min(q0 + BLOCK, L)
            cols = column_block(flat, K, q0, q1)
            im2col_wide_sample(xp, KH, KW, q0, cols)
            gemm(1.0, cols[:, :], dY_n[:, q0:q1].T, 1.0, dwT_parts[t, :, :])  # (K, block) @ (block, C_out)
        add_bias_grad_sample(dy[n], db_parts[t])


def _check_dy(dy, x_shape, w_shape, stride, padding):
    """dy must have the output's shape (N, C_out, OH, OW): the kernels walk the windows of
    the padded image by dy's size, so a larger dy would read and write outside it."""
    N, _, H, W = x_shape
    C_out, _, KH, KW = w_shape
    (sh, sw), (ph, pw) = stride, padding
    expected = (N, C_out, output_size(H, KH, sh, ph), output_size(W, KW, sw, pw))
    if tuple(dy.shape) != expected:
        raise ValueError(f"conv2d backward: dy must have the output's shape {expected}, got {tuple(dy.shape)}")


def forward(x, w, b, stride, padding):
    """y = conv2d(x, w) + b.

    x (N, C, H, W); w (C_out, C, KH, KW); b (C_out,) or None (no bias); stride = (sh, sw);
    padding = (ph, pw). Returns y (N, C_out, OH, OW). Backward needs only x and w again
    (it recomputes the columns from x).
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    C_out, _, KH, KW = w.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    b = np.zeros(C_out, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    if reference.enabled():
        y = np.empty((N, C_out, OH, OW), dtype=x.dtype)
        reference_forward_kernel(x, np.ascontiguousarray(w), b, sh, sw, ph, pw, y)
        return y
    y = np.empty((N, C_out, OH * OW), dtype=x.dtype)
    w_mat = np.ascontiguousarray(w).reshape(C_out, C * KH * KW)
    if _wide(stride, C, OW):
        run_chunks(wide_forward_kernel, chunks(N), x, w_mat, _kernel_slices(w), b, KH, KW, ph, pw, OH, OW, y)
    else:
        run_chunks(conv2d_forward_kernel, chunks(N), x, w_mat, b, KH, KW, sh, sw, ph, pw, OH, OW, y)
    return y.reshape(N, C_out, OH, OW)


def backward_input(dy, w, x_shape, stride, padding):
    """dx = col2im(w_mat^T dY): the gradient with respect to the input x.

    dy (N, C_out, OH, OW); w (C_out, C, KH, KW); x_shape = (N, C, H, W).
    Returns dx of shape x_shape. (The transposed convolution's forward is this function.)
    """
    dy = np.ascontiguousarray(dy)
    _check_dy(dy, x_shape, w.shape, stride, padding)
    if reference.enabled():
        return _reference_backward(dy, np.zeros(x_shape, dy.dtype), w, stride, padding)[0]
    N, C, H, W = x_shape
    C_out, _, KH, KW = w.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = dy.shape[2], dy.shape[3]
    dx = np.empty((N, C, H, W), dtype=dy.dtype)
    dY = dy.reshape(N, C_out, OH * OW)
    w_mat = np.ascontiguousarray(w).reshape(C_out, C * KH * KW)
    if _wide(stride, C, OW):
        run_chunks(wide_input_grad_kernel, chunks(N), dY, w_mat, _kernel_slices(w), KH, KW, ph, pw, OH, OW, dx)
    else:
        run_chunks(col2im_wT_dy_kernel, chunks(N), dY, w_mat, KH, KW, sh, sw, ph, pw, OH, OW, dx)
    return dx


def backward_params(dy, x, w_shape, stride, padding):
    """dw = sum_n dY[n] cols[n]^T (reshaped) and db = the sum of dy over n, oh, ow.

    dy (N, C_out, OH, OW); x (N, C, H, W); w_shape = (C_out, C, KH, KW).
    Returns (dw of shape w_shape, db of shape (C_out,)).
    """
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x)
    _check_dy(dy, x.shape, w_shape, stride, padding)
    if reference.enabled():
        return _reference_backward(dy, x, np.zeros(w_shape, dy.dtype), stride, padding)[1:]
    N, C_out, OH, OW = dy.shape
    _, C, KH, KW = w_shape
    (sh, sw), (ph, pw) = stride, padding
    T = chunks(N)
    dY = dy.reshape(N, C_out, OH * OW)
    dwT_parts = np.zeros((T, C * KH * KW, C_out), dtype=dy.dtype)  # the transposed dw's
    db_parts = np.zeros((T, C_out), dtype=dy.dtype)
    if _wide(stride, C, OW):
        run_chunks(wide_weight_grad_kernel, T, dY, x, KH, KW, ph, pw, OH, OW, dwT_parts, db_parts)
    else:
        run_chunks(weight_bias_grad_kernel, T, dY, x, KH, KW, sh, sw, ph, pw, OH, OW, dwT_parts, db_parts)
    return np.ascontiguousarray(dwT_parts.sum(axis=0).T).reshape(w_shape), db_parts.sum(axis=0)


def backward(dy, x, w, stride, padding, has_bias=True, input_grad=True):
    """The gradients of conv2d in the order of forward's inputs: (dx, dw, db).

    dy (N, C_out, OH, OW); x (N, C, H, W) and w (C_out, C, KH, KW) as given to forward.
    db is None when ``has_bias`` is False (forward was called with b=None); dx is None when
    ``input_grad`` is False (no one needs it: x is the batch of images), and then
    ``backward_input`` is not run.
    """
    if reference.enabled():  # one pass of the loops gives all three
        dx, dw, db = _reference_backward(dy, x, w, stride, padding)
    else:
        dx = backward_input(dy, w, x.shape, stride, padding) if input_grad else None
        dw, db = backward_params(dy, x, w.shape, stride, padding)
    return (dx if input_grad else None), dw, (db if has_bias else None)
