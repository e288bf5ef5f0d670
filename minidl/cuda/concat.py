"""Channel concatenation on the GPU and its split (the math: ``minidl/ops/concat.py``)."""

from numba import cuda

from ..device import as_ncl, empty
from ._launch import launch


@cuda.jit
def concat_kernel(a, b, y):
    """Thread q computes y's element q = (n, c, l) of the (N, CA + CB, L) view: a copy of
    a[n, c, l] for c < CA, of b[n, c - CA, l] otherwise."""
    N, C, L = y.shape
    CA = a.shape[1]
    for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        if c < CA:
            y[n, c, l] = a[n, c, l]
        else:
            y[n, c, l] = b[n, c - CA, l]


@cuda.jit
def split_kernel(dy, da, db):
    """Thread q reads dy's element q = (n, c, l) and writes it to da[n, c, l] (c < CA) or
    db[n, c - CA, l]."""
    N, C, L = dy.shape
    CA = da.shape[1]
    for q in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        if c < CA:
            da[n, c, l] = dy[n, c, l]
        else:
            db[n, c - CA, l] = dy[n, c, l]


def forward(a, b):
    """y = [a ; b] along axis 1 (device arrays (N, CA, ...) and (N, CB, ...))."""
    y = empty((a.shape[0], a.shape[1] + b.shape[1]) + tuple(a.shape[2:]), a.dtype, like=a)
    launch(concat_kernel, y.size, as_ncl(a), as_ncl(b), as_ncl(y))
    return y


def backward(dy, CA):
    """(da, db): dy (N, CA + CB, ...) split after channel CA."""
    da = empty((dy.shape[0], CA) + tuple(dy.shape[2:]), dy.dtype, like=dy)
    db = empty((dy.shape[0], dy.shape[1] - CA) + tuple(dy.shape[2:]), dy.dtype, like=dy)
    launch(split_kernel, dy.size, as_ncl(dy), as_ncl(da), as_ncl(db))
    return da, db
