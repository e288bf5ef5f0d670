"""``Flatten()``: (N, d1, d2, ...) -> (N, d1 * d2 * ...), the bridge from convolutional
feature maps (N, C, H, W) to the (N, features) input of ``Linear``. No arithmetic:
forward is a reshape (C order, as PyTorch's), backward reshapes the gradient back.

``Unflatten(dim, unflattened_size)`` goes the other way, e.g. (N, C * H * W) -> (N, C, H, W)
with ``Unflatten(1, (C, H, W))``: the bridge from a ``Linear`` back to feature maps, as in
the decoder of an autoencoder."""

import math
import numbers

from .checks import check_float_array, check_grad_shape
from .module import Layer


class Flatten(Layer):
    """Keeps the batch axis, flattens all the others (PyTorch's ``Flatten()``, start_dim=1)."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        if x.ndim < 2:
            raise ValueError(
                f"{name}: expected an input with at least 2 dimensions (N, ...), got shape {tuple(x.shape)}"
            )
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dy):
        name = type(self).__name__
        shape = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, (shape[0], math.prod(shape[1:])))
        return dy.reshape(shape)


class Unflatten(Layer):
    """The inverse of ``Flatten``: axis ``dim`` of size d1 * d2 * ... becomes the axes
    ``unflattened_size = (d1, d2, ...)`` (PyTorch's ``Unflatten(dim, unflattened_size)``).

    ``Unflatten(1, (16, 5, 5))`` turns a (N, 400) output of ``Linear`` into (N, 16, 5, 5)
    feature maps, the bridge from a vector back to images (a decoder). ``dim`` may be
    negative, counted from the end as in PyTorch. No arithmetic: forward is a reshape
    (C order), backward reshapes the gradient back to the input's shape.
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        name = type(self).__name__
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"{name}: dim must be an int, got {type(dim).__name__}")
        if (
            not isinstance(unflattened_size, (tuple, list))
            or not unflattened_size
            or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in unflattened_size)
        ):
            raise TypeError(f"{name}: unflattened_size must be a non-empty tuple of ints, got {unflattened_size!r}")
        if min(unflattened_size) < 1:
            raise ValueError(
                f"{name}: every size in unflattened_size must be at least 1 (minidl infers no -1), got {tuple(unflattened_size)}"
            )
        self.dim = int(dim)
        self.unflattened_size = tuple(int(d) for d in unflattened_size)

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"{name}: dim={self.dim} is out of range for an input of shape {tuple(x.shape)}")
        dim = self.dim % x.ndim
        if x.shape[dim] != math.prod(self.unflattened_size):
            raise ValueError(
                f"{name}: axis {self.dim} of the input has size {x.shape[dim]}, but unflattened_size "
                f"{self.unflattened_size} holds {math.prod(self.unflattened_size)} elements (input shape {tuple(x.shape)})"
            )
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1 :])

    def backward(self, dy):
        name = type(self).__name__
        shape = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        dim = self.dim % len(shape)
        check_grad_shape(name, dy, shape[:dim] + self.unflattened_size + shape[dim + 1 :])
        return dy.reshape(shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
