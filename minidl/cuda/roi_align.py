"""RoI Align on the GPU (the math: ``minidl/ops/roi_align.py``, whose ``region``,
``bin_average`` and ``bin_spread`` the threads call).

forward:   thread q computes one output y[k, c, p, q]
backward:  thread q owns one plane dx[n, c] and spreads into it, region by region, the
           gradient of every bin of image n (bins overlap at their edges and regions
           overlap: one thread per plane adds in a fixed order, without atomics)
"""

from numba import cuda

from ..device import empty, zeros
from ..ops import roi_align
from ._launch import from_cpu, launch

region = from_cpu(roi_align.region)
bin_average = from_cpu(roi_align.bin_average)
bin_spread = from_cpu(roi_align.bin_spread)


@cuda.jit
def roi_align_forward_kernel(x, rois, spatial_scale, sampling_ratio, aligned, y):
    """Thread t: output (k, c, p, q)."""
    K, C, PH, PW = y.shape
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        k, c, p, q = t // (C * PH * PW), t // (PH * PW) % C, t // PW % PH, t % PW
        n, v, u, step_v, step_u, gh, gw = region(rois, k, p, q, PH, PW, spatial_scale, sampling_ratio, aligned)
        y[k, c, p, q] = bin_average(x, n, c, v, u, step_v, step_u, gh, gw)


@cuda.jit
def roi_align_backward_kernel(dy, rois, spatial_scale, sampling_ratio, aligned, dx):
    """Thread t: plane (n, c) of dx, accumulating the bins of every region of image n. (The
    CPU file's ``spread_region`` is these loops, but it calls ``region`` on the rois, which
    under the simulator would be compiled CPU code handed a device array: so they are
    written here with the two helpers the simulator can run.)"""
    N, C = dx.shape[0], dx.shape[1]
    K, PH, PW = dy.shape[0], dy.shape[2], dy.shape[3]
    for t in range(cuda.grid(1), N * C, cuda.gridsize(1)):
        n_plane, c = t // C, t % C
        for k in range(K):
            if int(rois[k, 0]) == n_plane:
                for p in range(PH):
                    for q in range(PW):
                        n, v, u, step_v, step_u, gh, gw = region(
                            rois, k, p, q, PH, PW, spatial_scale, sampling_ratio, aligned
                        )
                        bin_spread(dx, n, c, v, u, step_v, step_u, gh, gw, dy[k, c, p, q])


def forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """As the CPU op, for device arrays: y (K, C, PH, PW)."""
    PH, PW = output_size
    y = empty((rois.shape[0], x.shape[1], PH, PW), x.dtype, like=x)
    launch(roi_align_forward_kernel, y.size, x, rois, float(spatial_scale), int(sampling_ratio), bool(aligned), y)
    return y


def backward(dy, rois, x_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """dx of x_shape on the device."""
    dx = zeros(x_shape, dy.dtype, like=dy)
    launch(
        roi_align_backward_kernel, x_shape[0] * x_shape[1], dy, rois, float(spatial_scale), int(sampling_ratio),
        bool(aligned), dx,
    )  # fmt: skip
    return dx
