"""``Linear(in_features, out_features, bias=True)``: y = x w^T + b (the math is in
``minidl/ops/linear.py``)."""

from .. import dispatch
from .checks import (
    check_float_array,
    check_grad_dtype,
    check_grad_shape,
    check_ndim,
    check_same_dtype,
    positive_int,
)
from .init import bias_uniform, kaiming_uniform
from .module import Layer, Parameter


class Linear(Layer):
    """Fully connected layer. Input (N, in_features), output (N, out_features).

    ``weight``: (out_features, in_features), Kaiming-uniform as in PyTorch;
    ``bias``: (out_features,), or None with ``bias=False``. float32 by default
    (``model.to(np.float64)`` converts).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(kaiming_uniform((out_features, in_features)))
        self.bias = Parameter(bias_uniform(out_features, in_features)) if bias else None

    def state_shapes(self):
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def forward(self, x):
        name = type(self).__name__
        self.check_state()
        check_float_array(name, x, device=self.device)
        check_ndim(name, x, (2,), "(N, in_features)")
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"{name}: expected an input of shape (N, {self.in_features}) "
                f"(in_features={self.in_features}), got shape {tuple(x.shape)}"
            )
        check_same_dtype(name, x, self.weight)
        b = self.bias.data if self.bias is not None else None
        y = dispatch.op("linear", x, self.weight.data, b).forward(x, self.weight.data, b)
        self.save_for_backward(x)
        return y

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def backward_params(self, dy):
        self._backward(dy, input_grad=False)  # the op skips dx = dy w

    def _backward(self, dy, input_grad):
        name = type(self).__name__
        self.check_state()
        x = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, (x.shape[0], self.out_features))
        check_grad_dtype(name, dy, self.weight)
        w = self.weight.data
        dx, dw, db = dispatch.op("linear", dy, x, w).backward(dy, x, w, self.bias is not None, input_grad=input_grad)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
