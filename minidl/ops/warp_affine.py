r"""Affine warp with bilinear interpolation, forward and backward: the resampling behind
the rotations, scalings and shifts of data augmentation (``transforms.RandomAffine``).

In symbols: each output pixel (row i, column j) of image n looks up the point (u, v) of
the input that the 2 x 3 matrix theta_n sends it to, and blends the four pixels around it:

$$\begin{pmatrix} u \\ v \end{pmatrix} = \theta_n \begin{pmatrix} j \\ i \\ 1 \end{pmatrix}, \qquad
  y_{n,c,i,j} = \sum_{a=0}^{1} \sum_{b=0}^{1} \omega_a(v)\, \omega_b(u)\;
  x_{n,\,c,\,\lfloor v \rfloor + a,\,\lfloor u \rfloor + b}$$

$$\omega_0(t) = 1 - (t - \lfloor t \rfloor), \quad \omega_1(t) = t - \lfloor t \rfloor, \qquad
  x = 0 \text{ outside the image}$$

Forward, as loops:

    u  = theta[n, 0, 0] j + theta[n, 0, 1] i + theta[n, 0, 2]     (a column of x)
    v  = theta[n, 1, 0] j + theta[n, 1, 1] i + theta[n, 1, 2]     (a row of x)
    u0, v0 = floor(u), floor(v);    fu, fv = u - u0, v - v0
    y[n, c, i, j] = (1 - fv)(1 - fu) x[n, c, v0,     u0] + (1 - fv) fu x[n, c, v0,     u0 + 1]
                  +       fv (1 - fu) x[n, c, v0 + 1, u0] +       fv fu x[n, c, v0 + 1, u0 + 1]

    x (N, C, H, W), theta (N, 2, 3)  ->  y (N, C, H, W)

Why from the output back to the input: to rotate an image, one could send every input
pixel forward to where it lands, but it lands between pixels, and some output pixels get
nothing (holes) while others get two. Asking, for every output pixel, where it comes from
gives each exactly one value. So theta is the inverse of the transform one has in mind:
to shift the image right by 3 pixels, theta = [[1, 0, -3], [0, 1, 0]] (pixel j comes from
column j - 3). At whole-number (u, v) the weights are 1, 0, 0, 0 and the warp copies
pixels exactly: shifts and flips lose nothing; rotations and scalings blur a little.

Backward. y is linear in x (y = A x, each row of A holding the four weights), so
dx = A^T dy: every dy[n, c, i, j] is spread back to the four pixels it was blended from,
with the same weights:

    dx[n, c, v0 + a, u0 + b] += w_a(v) w_b(u) dy[n, c, i, j]      for a, b in {0, 1}

<A x, dy> = <x, A^T dy> for all x and dy (tested). theta gets no gradient here: augmentation
draws it at random (a spatial transformer network would learn it and need one).
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def source_point(theta, n, i, j):
    """(u, v): the column and row of the input that output pixel (i, j) of image n reads."""
    u = theta[n, 0, 0] * j + theta[n, 0, 1] * i + theta[n, 0, 2]
    v = theta[n, 1, 0] * j + theta[n, 1, 1] * i + theta[n, 1, 2]
    return u, v


@njit(cache=True, inline="always")
def corner(u, v, a, b, H, W):
    """Corner (a, b) of the 2 x 2 neighbourhood of (u, v): its (row, column) and bilinear
    weight w_a(v) w_b(u); the weight is 0 (and the position (0, 0)) outside the image."""
    if not (-1.0 < u < W and -1.0 < v < H):  # no corner inside (also keeps floor() in range)
        return 0, 0, 0.0
    u0, v0 = int(math.floor(u)), int(math.floor(v))  # int: on the GPU floor() returns a float
    row, col = v0 + a, u0 + b
    if row < 0 or row >= H or col < 0 or col >= W:
        return 0, 0, 0.0
    fu, fv = u - u0, v - v0
    return row, col, (fv if a == 1 else 1.0 - fv) * (fu if b == 1 else 1.0 - fu)


@njit(cache=True, inline="always")
def blend(x, n, c, u, v):
    """The bilinear value of x[n, c] at (u, v): its four corners, weighted (0 outside)."""
    H, W = x.shape[2], x.shape[3]
    s = 0.0
    for a in range(2):
        for b in range(2):
            row, col, weight = corner(u, v, a, b, H, W)
            if weight != 0.0:
                s += weight * x[n, c, row, col]
    return s


@njit(cache=True, inline="always")
def spread(dx, n, c, u, v, g):
    """The transpose of ``blend``: dx[n, c, corner] += weight * g for the four corners."""
    H, W = dx.shape[2], dx.shape[3]
    for a in range(2):
        for b in range(2):
            row, col, weight = corner(u, v, a, b, H, W)
            if weight != 0.0:
                dx[n, c, row, col] += weight * g


@njit(cache=True)
def warp_affine_forward_kernel(x, theta, y):
    """y[n, c, i, j] = the bilinear value of x[n, c] at theta_n (j, i, 1); y overwritten."""
    N, C, H, W = x.shape
    for n in range(N):
        for i in range(H):
            for j in range(W):
                u, v = source_point(theta, n, i, j)
                for c in range(C):
                    y[n, c, i, j] = blend(x, n, c, u, v)


@njit(cache=True)
def warp_affine_backward_kernel(dy, theta, dx):
    """Every dy[n, c, i, j] spread to the four corners it was blended from; dx (zeros on
    entry) accumulates."""
    N, C, H, W = dy.shape
    for n in range(N):
        for i in range(H):
            for j in range(W):
                u, v = source_point(theta, n, i, j)
                for c in range(C):
                    spread(dx, n, c, u, v, dy[n, c, i, j])


def forward(x, theta):
    """The warp of every image.

    x (N, C, H, W) float32/float64; theta (N, 2, 3) of x's dtype, finite (output pixel
    (i, j) reads input point theta_n (j, i, 1)). Returns y (N, C, H, W).
    """
    y = np.empty_like(x)
    warp_affine_forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(theta), y)
    return y


def backward(dy, theta):
    """dx (N, C, H, W) = A^T dy for the warp by theta (N, 2, 3)."""
    dx = np.zeros_like(dy)
    warp_affine_backward_kernel(np.ascontiguousarray(dy), np.ascontiguousarray(theta), dx)
    return dx
