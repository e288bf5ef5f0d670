"""``Flatten()``: (N, d1, d2, ...) -> (N, d1 * d2 * ...), the bridge from convolutional
feature maps (N, C, H, W) to the (N, features) input of ``Linear``. No arithmetic:
forward is a reshape (C order, as PyTorch's), backward reshapes the gradient back."""
import math

from .checks import check_float_array, check_grad_shape, require_forward
from .module import Layer


class Flatten(Layer):
    """Keeps the batch axis, flattens all the others (PyTorch's ``Flatten()``, start_dim=1)."""

    def __init__(self):
        super().__init__()
        self.cache = None

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x)
        if x.ndim < 2:
            raise ValueError(f"{name}: expected an input with at least 2 dimensions (N, ...), got shape {tuple(x.shape)}")
        self.cache = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dy):
        name = type(self).__name__
        shape = require_forward(name, self.cache)
        check_float_array(name, dy, "upstream gradient dy")
        check_grad_shape(name, dy, (shape[0], math.prod(shape[1:])))
        return dy.reshape(shape)
