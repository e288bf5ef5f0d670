r"""Concatenation of two feature maps along the channels: the U-Net skip (``nn.Concat``).

In symbols:

$$y = [\,a ;\, b\,] \text{ (along the channels)}, \qquad
  \frac{\partial L}{\partial a} = \Big(\frac{\partial L}{\partial y}\Big)_{:,\,0:C_A}, \quad
  \frac{\partial L}{\partial b} = \Big(\frac{\partial L}{\partial y}\Big)_{:,\,C_A:C_A + C_B}$$

Forward, for a (N, CA, ...) and b (N, CB, ...) with the same batch and spatial sizes,
viewed as (N, C, L) (L = the product of the spatial sizes):

    y[n, c, l] = a[n, c, l]          for c < CA
    y[n, c, l] = b[n, c - CA, l]     for CA <= c < CA + CB

Backward. y copies every element of a and b once, so the gradient is split the same way:

    da[n, c, l] = dy[n, c, l]        db[n, c, l] = dy[n, CA + c, l]
"""

from numba import njit

from ..device import as_ncl, empty


@njit(cache=True)
def concat_kernel(a, b, y):
    """y[:, :CA] = a and y[:, CA:] = b, on (N, C, L) views; y is overwritten."""
    N, CA, L = a.shape
    CB = b.shape[1]
    for n in range(N):
        for c in range(CA):
            for l in range(L):
                y[n, c, l] = a[n, c, l]
        for c in range(CB):
            for l in range(L):
                y[n, CA + c, l] = b[n, c, l]


@njit(cache=True)
def split_kernel(dy, da, db):
    """da = dy[:, :CA] and db = dy[:, CA:], on (N, C, L) views; da and db are overwritten."""
    N, CA, L = da.shape
    CB = db.shape[1]
    for n in range(N):
        for c in range(CA):
            for l in range(L):
                da[n, c, l] = dy[n, c, l]
        for c in range(CB):
            for l in range(L):
                db[n, c, l] = dy[n, CA + c, l]


def forward(a, b):
    """y = [a ; b] along axis 1. a (N, CA, ...), b (N, CB, ...), C-contiguous, one dtype.
    Returns y (N, CA + CB, ...)."""
    y = empty((a.shape[0], a.shape[1] + b.shape[1]) + tuple(a.shape[2:]), a.dtype, like=a)
    concat_kernel(as_ncl(a), as_ncl(b), as_ncl(y))
    return y


def backward(dy, CA):
    """(da, db): dy (N, CA + CB, ...) split after channel CA, each C-contiguous."""
    da = empty((dy.shape[0], CA) + tuple(dy.shape[2:]), dy.dtype, like=dy)
    db = empty((dy.shape[0], dy.shape[1] - CA) + tuple(dy.shape[2:]), dy.dtype, like=dy)
    split_kernel(as_ncl(dy), as_ncl(da), as_ncl(db))
    return da, db
