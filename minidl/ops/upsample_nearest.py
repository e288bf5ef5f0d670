r"""Nearest-neighbour upsampling by integer scale factors, forward and backward.

In symbols:

$$y_{n,c,i,j} = x_{n,\,c,\,\lfloor i / s_h \rfloor,\,\lfloor j / s_w \rfloor}, \qquad
  \frac{\partial L}{\partial x_{n,c,h,w}} = \sum_{a < s_h} \sum_{b < s_w} \frac{\partial L}{\partial y_{n,\,c,\,h s_h + a,\,w s_w + b}}$$

Forward. Every pixel of every channel is copied into an sh x sw block of the output:

    y[n, c, i, j] = x[n, c, i // sh, j // sw]

    x (N, C, H, W)  ->  y (N, C, OH, OW),    OH = H sh,  OW = W sw

With sh = sw = 2:

                     1 1 2 2
    1 2              1 1 2 2
    3 4      ->      3 3 4 4
                     3 3 4 4

There is nothing to learn: it is a fixed linear map y = U x, where U has a single 1 in
each row (the row of y[n, c, i, j] has its 1 in the column of x[n, c, i // sh, j // sw]).
Compare the transposed convolution, whose kernel is learned (ops/conv_transpose2d.py).

Backward. Each x[n, c, h, w] was copied to the sh x sw outputs (h sh + a, w sw + b),
0 <= a < sh, 0 <= b < sw, so by the chain rule its gradient is the sum of theirs:

    dx[n, c, h, w] = sum_{a < sh} sum_{b < sw} dy[n, c, h sh + a, w sw + b]

that is dx = U^T dy: the backward of upsampling is sum pooling over sh x sw blocks (the
average pooling of ops/avgpool2d.py with kernel = stride = (sh, sw), times sh sw). The
two are adjoint: <U x, dy> = <x, U^T dy> for every x and dy, and sum(dx) = sum(dy).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def upsample_nearest_forward_kernel(x, sh, sw, y):
    """y[n, c, i, j] = x[n, c, i // sh, j // sw]; y (N, C, H sh, W sw) is overwritten."""
    N, C, OH, OW = y.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    y[n, c, i, j] = x[n, c, i // sh, j // sw]


@njit(cache=True)
def upsample_nearest_backward_kernel(dy, sh, sw, dx):
    """dx[n, c, h, w] = sum of dy over the block (h sh + a, w sw + b), a < sh, b < sw;
    dx (N, C, H, W) is overwritten."""
    N, C, H, W = dx.shape
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    s = 0.0
                    for a in range(sh):
                        for b in range(sw):
                            s += dy[n, c, h * sh + a, w * sw + b]
                    dx[n, c, h, w] = s


def forward(x, scale_factor):
    """Nearest-neighbour upsampling.

    x (N, C, H, W), float32/float64; scale_factor = (sh, sw), positive ints.
    Returns y (N, C, H sh, W sw) of x's dtype.
    """
    x = np.ascontiguousarray(x)
    sh, sw = scale_factor
    N, C, H, W = x.shape
    y = np.empty((N, C, H * sh, W * sw), dtype=x.dtype)
    upsample_nearest_forward_kernel(x, sh, sw, y)
    return y


def backward(dy, scale_factor):
    """dx: dy summed over each sh x sw block.

    dy (N, C, OH, OW) with OH, OW multiples of sh, sw; scale_factor = (sh, sw) as in
    forward. Returns dx (N, C, OH // sh, OW // sw), the shape of forward's x.
    """
    dy = np.ascontiguousarray(dy)
    sh, sw = scale_factor
    N, C, OH, OW = dy.shape
    dx = np.empty((N, C, OH // sh, OW // sw), dtype=dy.dtype)
    upsample_nearest_backward_kernel(dy, sh, sw, dx)
    return dx
