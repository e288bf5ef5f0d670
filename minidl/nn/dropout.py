"""``Dropout(p=0.5)``: inverted dropout (the math is in ``minidl/ops/dropout.py``).

In training mode each forward pass draws a fresh keep-mask from minidl's global generator
(so ``minidl.seed(n)`` makes it reproducible) and returns x * mask / (1 - p); in evaluation
mode (``model.eval()``) it is the identity.
"""
import numbers

from .. import dispatch, rng
from .checks import check_float_array, check_grad_shape, require_forward
from .module import Layer


class Dropout(Layer):
    """Zeroes each element with probability ``p`` during training, scaling the rest by 1/(1-p)."""

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout: p must be a real number in [0, 1], got {type(p).__name__}")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1] (the probability of dropping an element), got {p}")
        self.p = float(p)
        self.cache = None

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        if not self.training:
            self.cache = (None, x.shape)  # no mask: the identity
            return x
        ops = dispatch.op("dropout", x)
        mask = ops.make_mask(x.shape, self.p, rng.get_rng())
        self.cache = (mask, x.shape)
        return ops.forward(x, mask, self.p)

    def backward(self, dy):
        name = type(self).__name__
        mask, shape = require_forward(name, self.cache)
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, shape)
        if mask is None:  # evaluation mode: the identity
            return dy
        return dispatch.op("dropout", dy, mask).backward(dy, mask, self.p)

    def extra_repr(self):
        return f"p={self.p}"
