"""``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)``.

The math (the cross-correlation sum, im2col, the three backward equations) is in
``minidl/ops/conv2d.py``; this layer holds the weight (C_out, C_in, KH, KW) and bias
(C_out,), checks its input and keeps x for the backward pass.
"""
from .. import dispatch
from .checks import (
    check_channels, check_float_array, check_grad_shape, check_ndim, check_same_dtype,
    check_window_fits, positive_int, require_forward, to_pair,
)
from .init import bias_uniform, fan_in, kaiming_uniform
from .module import Layer, Parameter


class Conv2d(Layer):
    """2-D convolution over (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H + 2 padding - KH) // stride + 1. Kaiming-uniform weights, as PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = to_pair(name, "kernel_size", kernel_size, 1)
        self.stride = to_pair(name, "stride", stride, 1)
        self.padding = to_pair(name, "padding", padding, 0)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(kaiming_uniform(shape))
        self.bias = Parameter(bias_uniform(self.out_channels, fan_in(shape))) if bias else None
        self.cache = None

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x)
        check_ndim(name, x, (4,), "(N, C, H, W)")
        check_channels(name, x, self.in_channels)
        check_window_fits(name, x, self.kernel_size, self.padding)
        check_same_dtype(name, x, self.weight)
        b = self.bias.data if self.bias is not None else None
        y = dispatch.op("conv2d", x).forward(x, self.weight.data, b, self.stride, self.padding)
        self.cache = (x, y.shape)
        return y

    def backward(self, dy):
        name = type(self).__name__
        x, y_shape = require_forward(name, self.cache)
        check_float_array(name, dy, "upstream gradient dy")
        check_grad_shape(name, dy, y_shape)
        check_same_dtype(name, dy, self.weight)
        dx, dw, db = dispatch.op("conv2d", dy).backward(
            dy, x, self.weight.data, self.stride, self.padding, self.bias is not None
        )
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )
