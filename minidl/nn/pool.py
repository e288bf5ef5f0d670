"""``MaxPool2d`` and ``AvgPool2d(kernel_size, stride=None, padding=0)``: stride defaults
to the kernel size (non-overlapping windows), as in PyTorch. The math is in
``minidl/ops/maxpool2d.py`` and ``minidl/ops/avgpool2d.py``."""

from .. import dispatch
from .checks import check_float_array, check_grad_shape, check_ndim, check_window_fits, to_pair
from .module import Layer


class _Pool2d(Layer):
    """What both pools share: the arguments and the input checks."""

    op_name = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = to_pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else to_pair(name, "stride", stride, 1)
        self.padding = to_pair(name, "padding", padding, 0)
        if self.padding[0] > self.kernel_size[0] // 2 or self.padding[1] > self.kernel_size[1] // 2:
            raise ValueError(f"{name}: padding {self.padding} must be at most half the kernel size {self.kernel_size}")

    def _check(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        check_ndim(name, x, (4,), "(N, C, H, W)")
        check_window_fits(name, x, self.kernel_size, self.padding)

    def _check_dy(self, dy, y_shape):
        name = type(self).__name__
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, y_shape)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """y = the maximum of each window; backward routes dy to the arg-max (the first
    maximum in row-major window order on ties)."""

    def forward(self, x):
        self._check(x)
        y, argmax = dispatch.op("maxpool2d", x).forward(x, self.kernel_size, self.stride, self.padding)
        self.save_for_backward((argmax, x.shape))
        return y

    def backward(self, dy):
        argmax, x_shape = self.saved_for_backward()
        self._check_dy(dy, argmax.shape)
        return dispatch.op("maxpool2d", dy, argmax).backward(
            dy, argmax, x_shape, self.kernel_size, self.stride, self.padding
        )


class AvgPool2d(_Pool2d):
    """y = the mean of each window (zero padding counted); backward spreads dy evenly."""

    def forward(self, x):
        self._check(x)
        y = dispatch.op("avgpool2d", x).forward(x, self.kernel_size, self.stride, self.padding)
        self.save_for_backward((x.shape, y.shape))
        return y

    def backward(self, dy):
        x_shape, y_shape = self.saved_for_backward()
        self._check_dy(dy, y_shape)
        return dispatch.op("avgpool2d", dy).backward(dy, x_shape, self.kernel_size, self.stride, self.padding)
