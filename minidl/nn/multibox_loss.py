"""``MultiBoxLoss(neg_pos_ratio=3, beta=1.0)``: the SSD loss, smooth L1 on the offsets of
the anchors that hold an object plus softmax cross-entropy with background, the hardest
negatives mined at neg_pos_ratio : 1, divided by the number of positives (the formula, the
mining rule and the derivatives are in ``minidl/ops/multibox_loss.py``).

    loss_fn = nn.MultiBoxLoss()
    loss = loss_fn(model(x), target)     # pred (N, 4 + K, A); target (N, 5, A)
    model.backward(loss_fn.backward())   # d loss / d pred, in pred's shape
    loss_fn.terms                        # {"loc": ..., "conf": ...}, each divided by N_pos

``minidl.detection.encode_ssd_targets`` builds the target from boxes, labels and anchors.
"""

import numpy as np

from .. import dispatch
from ..device import as_array_like, to_host
from .checks import check_float_array, positive_int, real_number
from .loss import _check_finite
from .module import Layer


class MultiBoxLoss(Layer):
    """The SSD loss over A anchors and K classes (class 0 the background).

    ``loss_fn(pred, target)``: pred (N, 4 + K, A) float32/float64, the 4 offsets and the K
    class scores of every anchor; target (N, 5, A), the 4 encoded offsets and the label
    (a whole number in [0, K), stored as a float) of every anchor. Returns the loss as a
    Python float; ``backward()`` returns d loss / d pred. After each call, ``terms`` holds
    its two parts {"loc", "conf"} (each divided by N_pos), ``num_pos`` the positives of
    the batch and ``selected`` the (N, A) choice (1 positive, 2 mined negative, 0 left out).
    """

    def __init__(self, neg_pos_ratio=3, beta=1.0):
        super().__init__()
        self.neg_pos_ratio = positive_int("MultiBoxLoss", "neg_pos_ratio", neg_pos_ratio)
        self.beta = real_number("MultiBoxLoss", "beta", beta, 0.0)
        self.terms, self.num_pos, self.selected = None, None, None

    def _check(self, pred, target):
        name = type(self).__name__
        check_float_array(name, pred, "pred")
        check_float_array(name, target, "target")
        if pred.ndim != 3 or pred.shape[1] < 6:
            raise ValueError(
                f"{name}: expected pred of shape (N, 4 + K, A), 4 offsets and K >= 2 class scores "
                f"(background included) per anchor, got shape {tuple(pred.shape)}"
            )
        N, V, A = pred.shape
        if tuple(target.shape) != (N, 5, A):
            raise ValueError(
                f"{name}: expected the target of shape (N, 5, A) = ({N}, 5, {A}) "
                f"(4 encoded offsets and a label per anchor), got shape {tuple(target.shape)}"
            )
        if pred.size == 0:
            raise ValueError(f"{name}: pred is empty (shape {tuple(pred.shape)})")
        _check_finite(name, pred, "pred")
        _check_finite(name, target, "the target")
        labels = np.asarray(to_host(target[:, 4, :]))
        bad = np.argwhere((labels != np.floor(labels)) | (labels < 0) | (labels >= V - 4))
        if bad.size:
            n, a = bad[0]
            raise ValueError(
                f"{name}: target[:, 4] holds the labels, whole numbers in [0, K) = [0, {V - 4}) "
                f"(0 background), got {labels[n, a]} at (n, a) = ({n}, {a})"
            )

    def forward(self, pred, target):
        self._check(pred, target)
        target = as_array_like(target, like=pred, dtype=pred.dtype)
        ops = dispatch.op("multibox_loss", pred, target)
        ce, probs = ops.confidence(pred, target)
        selected = ops.hard_negatives(ce, target, self.neg_pos_ratio)
        loss, loc, conf, num_pos = ops.forward(pred, target, ce, selected, self.beta)
        scale = ops.scale_of(num_pos)
        self.terms, self.num_pos, self.selected = {"loc": scale * loc, "conf": scale * conf}, int(num_pos), selected
        self.save_for_backward((pred, target, probs, selected, num_pos))
        return loss

    def backward(self):
        """d loss / d pred, of pred's shape and dtype (the mining held fixed)."""
        pred, target, probs, selected, num_pos = self.saved_for_backward()
        return dispatch.op("multibox_loss", pred).backward(pred, target, probs, selected, num_pos, self.beta)

    def extra_repr(self):
        return f"neg_pos_ratio={self.neg_pos_ratio}, beta={self.beta}"
