"""Element-wise activations: ``ReLU``, ``LeakyReLU(negative_slope)``, ``Sigmoid``, ``Tanh``.

Each is one op of ``minidl/ops/`` applied to every element of an input of any shape.
ReLU and LeakyReLU keep their input for backward; Sigmoid and Tanh keep their output,
since their derivatives are written in y (y (1 - y) and 1 - y^2).
"""

from .. import dispatch
from .checks import check_batch_axis, check_float_array, check_grad_shape, real_number
from .module import Layer


class _Elementwise(Layer):
    """y = f(x) element by element, with the op module named ``op_name``.

    Subclasses set ``op_name`` and ``keep`` ("x" or "y": what backward needs).
    """

    op_name = None
    keep = "x"

    def __init__(self):
        super().__init__()

    def op_args(self):
        """Extra arguments of the op after the array (LeakyReLU: its slope)."""
        return ()

    def forward(self, x):
        check_float_array(type(self).__name__, x, device=self.device)
        check_batch_axis(type(self).__name__, x)
        y = dispatch.op(self.op_name, x).forward(x, *self.op_args())
        self.save_for_backward(x if self.keep == "x" else y)
        return y

    def backward(self, dy):
        name = type(self).__name__
        kept = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, kept.shape)
        return dispatch.op(self.op_name, dy, kept).backward(dy, kept, *self.op_args())


class ReLU(_Elementwise):
    """y = max(x, 0), element-wise."""

    op_name = "relu"
    keep = "x"


class LeakyReLU(_Elementwise):
    """y = x for x > 0, negative_slope * x otherwise, element-wise."""

    op_name = "leaky_relu"
    keep = "x"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real_number("LeakyReLU", "negative_slope", negative_slope)

    def op_args(self):
        return (self.negative_slope,)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), element-wise (stable for large |x|)."""

    op_name = "sigmoid"
    keep = "y"


class Tanh(_Elementwise):
    """y = tanh(x), element-wise."""

    op_name = "tanh"
    keep = "y"
