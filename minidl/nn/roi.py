"""``RoIPool(output_size, spatial_scale)`` and ``RoIAlign(output_size, spatial_scale,
sampling_ratio=-1, aligned=False)``: torchvision's layers of the two-stage detectors (the
math: ``minidl/ops/roi_pool.py`` and ``minidl/ops/roi_align.py``).

Both are called with two arrays, ``layer(features, rois)``: features (N, C, H, W) and
rois (K, 5), one row (n, x1, y1, x2, y2) per region in input-image coordinates, n the
index of its image in the batch. They return (K, C, PH, PW), and ``backward(dy)`` returns
the gradient of the features only (the regions are proposals: they get no gradient).
"""

import numpy as np

from .. import dispatch
from ..device import as_array_like, is_device_array, to_host
from .checks import check_float_array, check_grad_dtype, check_grad_shape, check_ndim, integer, real_number, to_pair
from .module import Layer


class _RoILayer(Layer):
    """What RoIPool and RoIAlign share: the arguments, the check of the regions, the
    saving for backward. A subclass gives ``pool(features, rois) -> (y, saved)``,
    ``unpool(dy, rois, saved, x_shape) -> dx`` and ``arguments()`` (for the repr)."""

    def __init__(self, output_size, spatial_scale):
        super().__init__()
        name = type(self).__name__
        self.output_size = to_pair(name, "output_size", output_size, 1)
        self.spatial_scale = real_number(name, "spatial_scale", spatial_scale, 0.0, low_open=True)

    def checked_rois(self, features, rois):
        """rois (K, 5), finite, of the features' dtype and device; each batch index a whole
        number in [0, N), each region with x1 <= x2 and y1 <= y2 (checked on the host)."""
        name = type(self).__name__
        host = to_host(rois) if is_device_array(rois) else np.asarray(rois)
        if not np.issubdtype(host.dtype, np.number) or np.issubdtype(host.dtype, np.complexfloating):
            raise TypeError(f"{name}: rois must be real numbers, got dtype {host.dtype}")
        if host.ndim != 2 or host.shape[1] != 5:
            raise ValueError(f"{name}: rois must have shape (K, 5), rows (n, x1, y1, x2, y2), got {host.shape}")
        if not np.isfinite(host).all():
            raise ValueError(f"{name}: rois hold NaN or inf")
        n, N = host[:, 0], features.shape[0]
        bad = np.flatnonzero((n != np.floor(n)) | (n < 0) | (n >= N))
        if bad.size:
            raise ValueError(
                f"{name}: roi {bad[0]} has batch index {host[bad[0], 0].item()!r}; it must be a whole number in [0, {N}) "
                f"(the batch has N={N} images)"
            )
        bad = np.flatnonzero((host[:, 3] < host[:, 1]) | (host[:, 4] < host[:, 2]))
        if bad.size:
            raise ValueError(
                f"{name}: roi {bad[0]} is {host[bad[0]].tolist()}; a region needs x1 <= x2 and y1 <= y2 "
                f"(rows are (n, x1, y1, x2, y2))"
            )
        return as_array_like(host, like=features, dtype=features.dtype)

    def forward(self, features, rois):
        name = type(self).__name__
        check_float_array(name, features, "features", device=self.device)
        check_ndim(name, features, (4,), "(N, C, H, W)", "features")
        rois = self.checked_rois(features, rois)
        y, saved = self.pool(features, rois)
        self.save_for_backward((features.shape, rois, saved, y.shape))
        return y

    def backward(self, dy):
        name = type(self).__name__
        x_shape, rois, saved, y_shape = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, y_shape)
        check_grad_dtype(name, dy, rois, "features")
        return self.unpool(dy, rois, saved, x_shape)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.arguments().items())


class RoIPool(_RoILayer):
    """RoI max pooling, torchvision's ``RoIPool(output_size, spatial_scale)``: each region,
    rounded to the feature grid, max-pooled to output_size (Fast R-CNN)."""

    def pool(self, features, rois):
        y, argmax = dispatch.op("roi_pool", features, rois).forward(
            features, rois, self.output_size, self.spatial_scale
        )
        return y, argmax

    def unpool(self, dy, rois, argmax, x_shape):
        return dispatch.op("roi_pool", dy, rois, argmax).backward(dy, rois, argmax, x_shape)

    def arguments(self):
        return {"output_size": self.output_size, "spatial_scale": self.spatial_scale}


class RoIAlign(_RoILayer):
    """RoI Align, torchvision's ``RoIAlign(output_size, spatial_scale, sampling_ratio=-1,
    aligned=False)``: each region, unrounded, averaged over bilinear samples per bin (Mask
    R-CNN). ``sampling_ratio`` <= 0 picks ceil(region size / output size) samples per bin;
    ``aligned=True`` shifts by half a pixel so that pixel centres line up (use it in new
    models; False is the original Mask R-CNN's rule)."""

    def __init__(self, output_size, spatial_scale, sampling_ratio=-1, aligned=False):
        super().__init__(output_size, spatial_scale)
        self.sampling_ratio = integer("RoIAlign", "sampling_ratio", sampling_ratio, -(2**31))
        if not isinstance(aligned, (bool, np.bool_)):
            raise TypeError(f"RoIAlign: aligned must be True or False, got {aligned!r}")
        self.aligned = bool(aligned)

    def geometry(self):
        return self.spatial_scale, self.sampling_ratio, self.aligned

    def pool(self, features, rois):
        op = dispatch.op("roi_align", features, rois)
        return op.forward(features, rois, self.output_size, *self.geometry()), None

    def unpool(self, dy, rois, _, x_shape):
        return dispatch.op("roi_align", dy, rois).backward(dy, rois, x_shape, *self.geometry())

    def arguments(self):
        return {
            "output_size": self.output_size,
            "spatial_scale": self.spatial_scale,
            "sampling_ratio": self.sampling_ratio,
            "aligned": self.aligned,
        }
