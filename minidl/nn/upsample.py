"""``Upsample(scale_factor, mode="nearest")``: grow feature maps by copying pixels (the
math is in ``minidl/ops/upsample_nearest.py``).

A fixed, parameter-free way to go from a coarse map back to the image's size, to compare
with the learned one, ``ConvTranspose2d``: each pixel becomes an sh x sw block of copies,
and the gradient of the block is summed back into the pixel.
"""

from .. import dispatch
from .checks import check_float_array, check_grad_shape, check_ndim, to_pair
from .module import Layer

MODES = ("nearest",)


class Upsample(Layer):
    """Nearest-neighbour upsampling of (N, C, H, W) to (N, C, H sh, W sw).

    ``scale_factor``: an int (the same for both axes) or a pair ``(sh, sw)`` of positive
    ints. ``mode``: only ``"nearest"`` is implemented. No parameters.
    """

    def __init__(self, scale_factor, mode="nearest"):
        super().__init__()
        self.scale_factor = to_pair("Upsample", "scale_factor", scale_factor, 1)
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"Upsample: mode must be 'nearest' (the only mode minidl implements), got {mode!r}")
        self.mode = mode

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        check_ndim(name, x, (4,), "(N, C, H, W)")
        y = dispatch.op("upsample_nearest", x).forward(x, self.scale_factor)
        self.save_for_backward(tuple(x.shape))
        return y

    def backward(self, dy):
        name = type(self).__name__
        N, C, H, W = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        sh, sw = self.scale_factor
        check_grad_shape(name, dy, (N, C, H * sh, W * sw))
        return dispatch.op("upsample_nearest", dy).backward(dy, self.scale_factor)

    def extra_repr(self):
        sh, sw = self.scale_factor
        scale = sh if sh == sw else (sh, sw)
        return f"scale_factor={scale}, mode={self.mode!r}"
