"""``Dropout(p=0.5)``: inverted dropout (the math is in ``minidl/ops/dropout.py``).

In training mode each forward pass draws a fresh keep-mask from minidl's global generator
(so ``minidl.seed(n)`` makes it reproducible) and returns x * mask / (1 - p); in evaluation
mode (``model.eval()``) it is the identity.
"""

from .. import dispatch, rng
from .checks import check_batch_axis, check_float_array, check_grad_shape, real_number
from .module import Layer


class Dropout(Layer):
    """Zeroes each element with probability ``p`` during training, scaling the rest by 1/(1-p)."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = real_number("Dropout", "p (the probability of dropping an element)", p, 0.0, 1.0)

    def forward(self, x):
        name = type(self).__name__
        check_float_array(name, x, device=self.device)
        check_batch_axis(name, x)
        if not self.training:
            self.save_for_backward((None, x.shape))  # no mask: the identity
            return x
        ops = dispatch.op("dropout", x)
        mask = ops.make_mask(x.shape, self.p, rng.get_rng())
        self.save_for_backward((mask, x.shape))
        return ops.forward(x, mask, self.p)

    def backward(self, dy):
        name = type(self).__name__
        mask, shape = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        check_grad_shape(name, dy, shape)
        if mask is None:  # evaluation mode: the identity
            return dy
        return dispatch.op("dropout", dy, mask).backward(dy, mask, self.p)

    def extra_repr(self):
        return f"p={self.p}"
