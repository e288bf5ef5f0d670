"""``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)`` and
``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
output_padding=0, bias=True)``.

The math (the cross-correlation sum, im2col, the three backward equations) is in
``minidl/ops/conv2d.py``; the transposed convolution, conv2d with its forward and backward
passes swapped, is in ``minidl/ops/conv_transpose2d.py``. These layers hold the weight and
the bias (C_out,), check their input and keep x for the backward pass. What they share
(arguments, checks, parameters, backward) is written once, in ``_ConvLayer``; they differ
in the weight's shape, the op they call and the output-size rule they check.
"""

from .. import dispatch
from .checks import (
    check_channels,
    check_float_array,
    check_grad_dtype,
    check_grad_shape,
    check_ndim,
    check_same_dtype,
    check_window_fits,
    positive_int,
    to_pair,
)
from .init import bias_uniform, fan_in, kaiming_uniform
from .module import Layer, Parameter


class _ConvLayer(Layer):
    """The part of Conv2d and ConvTranspose2d that is the same.

    A subclass names its op module (``op_name``), gives its ``weight_shape()``, creates its
    parameters with ``init_parameters(bias)``, and gives ``geometry()`` (the op's keyword
    arguments after x, w, b) and ``check_size(x)`` (its output-size rule).
    """

    op_name = None

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = to_pair(name, "kernel_size", kernel_size, 1)
        self.stride = to_pair(name, "stride", stride, 1)
        self.padding = to_pair(name, "padding", padding, 0)

    def init_parameters(self, bias):
        """Kaiming-uniform weight of ``weight_shape()`` (fan_in = shape[1] * KH * KW,
        PyTorch's rule) and, if ``bias``, a bias (C_out,) drawn with the same fan_in."""
        shape = self.weight_shape()
        self.weight = Parameter(kaiming_uniform(shape))
        self.bias = Parameter(bias_uniform(self.out_channels, fan_in(shape))) if bias else None

    def state_shapes(self):
        return {"weight": self.weight_shape(), "bias": (self.out_channels,)}

    def forward(self, x):
        name = type(self).__name__
        self.check_state()
        check_float_array(name, x, device=self.device)
        check_ndim(name, x, (4,), "(N, C, H, W)")
        check_channels(name, x, self.in_channels)
        self.check_size(x)
        check_same_dtype(name, x, self.weight)
        b = self.bias.data if self.bias is not None else None
        y = dispatch.op(self.op_name, x, self.weight.data, b).forward(x, self.weight.data, b, **self.geometry())
        self.save_for_backward((x, y.shape))
        return y

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def backward_params(self, dy):
        self._backward(dy, input_grad=False)  # the op skips dx (conv2d's w^T dY and col2im, or conv_transpose2d's conv)

    def _backward(self, dy, input_grad):
        name = type(self).__name__
        self.check_state()
        x, y_shape = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, y_shape)
        check_grad_dtype(name, dy, self.weight)
        dx, dw, db = dispatch.op(self.op_name, dy, x, self.weight.data).backward(
            dy, x, self.weight.data, self.stride, self.padding, self.bias is not None, input_grad=input_grad
        )
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        geometry = ", ".join(f"{k}={v}" for k, v in self.geometry().items())
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, {geometry}, "
            f"bias={self.bias is not None}"
        )


class Conv2d(_ConvLayer):
    """2-D convolution over (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H + 2 padding - KH) // stride + 1. Weight (C_out, C_in, KH, KW), Kaiming-uniform
    as PyTorch."""

    op_name = "conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        self.init_parameters(bias)

    def weight_shape(self):
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def geometry(self):
        return {"stride": self.stride, "padding": self.padding}

    def check_size(self, x):
        check_window_fits(type(self).__name__, x, self.kernel_size, self.padding)


class ConvTranspose2d(_ConvLayer):
    """2-D transposed convolution over (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H - 1) stride - 2 padding + KH + output_padding: the convolution whose forward and
    backward passes are swapped, a learned upsampling.

    Weight (C_in, C_out, KH, KW) as PyTorch, Kaiming-uniform with PyTorch's
    fan_in = C_out * KH * KW. ``output_padding`` (an int or a pair, each smaller than its
    stride) adds rows at the bottom and columns at the right: it picks one of the output
    sizes that a stride > 1 leaves open.
    """

    op_name = "conv_transpose2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        name = type(self).__name__
        self.output_padding = to_pair(name, "output_padding", output_padding, 0)
        if self.output_padding[0] >= self.stride[0] or self.output_padding[1] >= self.stride[1]:
            raise ValueError(
                f"{name}: output_padding must be smaller than stride (PyTorch's rule: smaller than either "
                f"stride or dilation, and minidl's dilation is 1), got output_padding={self.output_padding} "
                f"with stride={self.stride}"
            )
        self.init_parameters(bias)

    def weight_shape(self):
        return (self.in_channels, self.out_channels, *self.kernel_size)

    def geometry(self):
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding}

    def check_size(self, x):
        """OH = (H - 1) sh - 2 ph + KH + oph and OW alike must be at least 1."""
        (H, W), (KH, KW) = x.shape[2:], self.kernel_size
        (sh, sw), (ph, pw), (oph, opw) = self.stride, self.padding, self.output_padding
        OH, OW = (H - 1) * sh - 2 * ph + KH + oph, (W - 1) * sw - 2 * pw + KW + opw
        if OH < 1 or OW < 1:
            raise ValueError(
                f"{type(self).__name__}: the output would be {OH}x{OW} for an input of {H}x{W} "
                f"(OH = (H - 1) stride - 2 padding + KH + output_padding with kernel {KH}x{KW}, "
                f"stride {self.stride}, padding {self.padding}, output_padding {self.output_padding}); "
                f"it must be at least 1x1: use less padding or a larger input"
            )
