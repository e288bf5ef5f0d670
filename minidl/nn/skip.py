"""The two skip connections: the rest of the graph beyond ``Sequential``.

``Residual(inner)``, the ResNet block:

    y = x + inner(x)                   dx = dy + inner.backward(dy)

(the identity path carries the gradient unchanged, which is why deep residual networks
train). ``Concat(inner)``, the U-Net skip, stacks x and inner(x) along the channels:

    y = [x ; inner(x)]  (axis 1)       dx = dy[:, :C] + inner.backward(dy[:, C:])

where C is the number of channels (or features) of x.
"""

from .. import anomaly, dispatch
from .checks import check_batch_axis, check_float_array, check_grad_shape
from .module import Layer, atomic_forward


class Residual(Layer):
    """``y = x + inner(x)``; ``inner`` must keep the shape of its input."""

    def __init__(self, inner):
        super().__init__()
        if not isinstance(inner, Layer):
            raise TypeError(f"Residual: inner must be a minidl layer, got {type(inner).__name__}")
        self.inner = inner

    def forward(self, x):
        check_float_array("Residual", x, device=self.device)
        check_batch_axis("Residual", x)
        with atomic_forward():  # inner's changes are undone if the shapes do not match
            fx = anomaly.child_forward(self.inner, "inner", x)
            if fx.shape != x.shape:
                raise ValueError(
                    f"Residual: inner(x) must have the input's shape {tuple(x.shape)}, got {tuple(fx.shape)}"
                )
        self.save_for_backward(x.shape)
        return dispatch.op("add", x, fx).forward(x, fx)

    def backward(self, dy):
        shape = self.saved_for_backward()
        check_float_array("Residual", dy, "upstream gradient dy", device=self.device)
        check_grad_shape("Residual", dy, shape)
        return dispatch.op("add", dy).forward(dy, anomaly.child_backward(self.inner, "inner", dy))


class Concat(Layer):
    """``y = concatenate([x, inner(x)], axis=1)``; batch and spatial sizes must agree."""

    def __init__(self, inner):
        super().__init__()
        if not isinstance(inner, Layer):
            raise TypeError(f"Concat: inner must be a minidl layer, got {type(inner).__name__}")
        self.inner = inner

    def forward(self, x):
        check_float_array("Concat", x, device=self.device)
        if x.ndim < 2:
            raise ValueError(f"Concat: expected an input (N, C, ...) with a channel axis, got shape {tuple(x.shape)}")
        with atomic_forward():  # inner's changes are undone if the shapes do not match
            fx = anomaly.child_forward(self.inner, "inner", x)
            if fx.ndim != x.ndim or fx.shape[0] != x.shape[0] or fx.shape[2:] != x.shape[2:]:
                raise ValueError(
                    f"Concat: inner(x) must keep the batch and spatial sizes of x to be concatenated "
                    f"along the channels: x has shape {tuple(x.shape)}, inner(x) has {tuple(fx.shape)}"
                )
        y = dispatch.op("concat", x, fx).forward(x, fx)
        self.save_for_backward((x.shape[1], y.shape))
        return y

    def backward(self, dy):
        C, y_shape = self.saved_for_backward()
        check_float_array("Concat", dy, "upstream gradient dy", device=self.device)
        check_grad_shape("Concat", dy, y_shape)
        ops = dispatch.op("concat", dy)
        dx_skip, dfx = ops.backward(dy, C)  # dy[:, :C] and dy[:, C:]
        return dispatch.op("add", dx_skip).forward(dx_skip, anomaly.child_backward(self.inner, "inner", dfx))
