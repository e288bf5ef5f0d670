"""Losses: ``SoftmaxCrossEntropy(weight=None)``, ``MSELoss()``, ``SmoothL1Loss(reduction,
beta)`` and ``BCEWithLogitsLoss(reduction, pos_weight)``.

A loss is a layer whose forward takes the prediction and the target and returns a Python
float, and whose ``backward()`` takes no argument (the loss is the end of the chain, its
upstream gradient is 1) and returns d loss / d prediction, to hand to ``model.backward``:

    loss = loss_fn(model(x), target)
    model.backward(loss_fn.backward())

``SmoothL1Loss`` and ``BCEWithLogitsLoss`` take PyTorch's ``reduction``: "mean" (the
default) and "sum" return a float and ``backward()`` takes no argument; "none" returns the
per-element losses (the prediction's shape) and ``backward(dy)`` takes their upstream
gradient, as ``loss.backward(gradient)`` does in PyTorch.

Every input is checked first, and a NaN or inf in the prediction or the target is an
error: NaN never passes silently through a loss (a NaN loss means a diverged model or bad
data, and would otherwise turn every gradient into NaN without a word).

Devices. A loss runs where its prediction is; the target (or the labels) may be given on
either side and is moved there. The loss is a Python float, ``backward()`` an array on
the prediction's device.
"""

import numpy as np

from .. import dispatch
from ..device import as_array_like, device_of, is_device_array
from ..reduction import REDUCTIONS
from .checks import check_batch_axis, check_float_array, check_grad_dtype, check_grad_shape, check_ndim, real_number
from .module import Layer


def _check_finite(layer, a, name):
    """``a`` must hold no NaN or inf (counted by the reduce op, where ``a`` lives)."""
    bad = dispatch.op("reduce", a).count_nonfinite(a)
    if bad:
        raise ValueError(
            f"{layer}: found NaN or inf in {name} ({bad} of {a.size} values); NaN never passes "
            f"silently through a loss (a diverged model? try a smaller learning rate, or check the data)"
        )


def _checked_pair(layer, pred, target, names=("pred", "target")):
    """A prediction and a target of one shape (no broadcasting), float, non-empty, finite;
    the target returned in pred's dtype on pred's device."""
    check_float_array(layer, pred, names[0])
    check_float_array(layer, target, names[1])
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"{layer}: {names[0]} has shape {tuple(pred.shape)} but {names[1]} has shape {tuple(target.shape)}; "
            f"they must be equal (no broadcasting)"
        )
    check_batch_axis(layer, pred, names[0])
    _check_not_empty(layer, pred, names[0])
    _check_finite(layer, pred, names[0])
    _check_finite(layer, target, names[1])
    return pred, as_array_like(target, like=pred, dtype=pred.dtype)


def _check_not_empty(layer, a, name):
    if a.size == 0:
        raise ValueError(f"{layer}: {name} is empty (shape {tuple(a.shape)}); a mean over no elements is undefined")


class SoftmaxCrossEntropy(Layer):
    """Softmax followed by the cross-entropy, as one loss (PyTorch's ``CrossEntropyLoss``).

    ``loss_fn(logits, labels)``: logits (N, K) with integer labels (N,) in [0, K), or
    logits (N, K, H, W) with labels (N, H, W) for a class per pixel. Returns the mean loss
    over all N (or N * H * W) positions; with ``weight`` (K,) the weighted mean
    sum_i w[y_i] l_i / sum_i w[y_i], as PyTorch's ``weight=``. The logits are raw scores:
    do not put a softmax layer before this loss.
    """

    def __init__(self, weight=None):
        super().__init__()
        self.weight = None if weight is None else self._checked_weight(weight)

    @staticmethod
    def _checked_weight(weight):
        w = np.asarray(weight)
        if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
            raise TypeError(f"SoftmaxCrossEntropy: weight must be real numbers, one per class, got dtype {w.dtype}")
        if w.ndim != 1:
            raise ValueError(f"SoftmaxCrossEntropy: weight must be 1-D (K,), one per class, got shape {w.shape}")
        w = w.astype(np.float64)
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"SoftmaxCrossEntropy: weight must be finite and non-negative, got {w.tolist()}")
        return w

    @staticmethod
    def probabilities(logits):
        """Softmax over the class axis 1: logits (N, K) or (N, K, H, W) -> probabilities, same shape."""
        check_float_array("SoftmaxCrossEntropy.probabilities", logits, "logits")
        check_ndim("SoftmaxCrossEntropy.probabilities", logits, (2, 4), "(N, K) or (N, K, H, W)", "logits")
        return dispatch.op("softmax_cross_entropy", logits).softmax(logits)

    def forward(self, logits, labels):
        name = type(self).__name__
        check_float_array(name, logits, "logits")
        check_ndim(name, logits, (2, 4), "(N, K) or (N, K, H, W)", "logits")
        N, K = logits.shape[:2]
        layout = "(N,)" if logits.ndim == 2 else "(N, H, W)"
        expected = (N,) + tuple(logits.shape[2:])
        if not is_device_array(labels):
            labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(
                f"{name}: expected integer class labels (e.g. int64) of shape {layout}, got dtype {labels.dtype}"
            )
        if labels.ndim != logits.ndim - 1:
            raise ValueError(
                f"{name}: for logits of shape {tuple(logits.shape)} expected labels of shape "
                f"{layout} = {expected}, got shape {labels.shape}"
            )
        if labels.shape[0] != N:
            raise ValueError(f"{name}: batch sizes differ: the logits have N={N}, the labels {labels.shape[0]}")
        if labels.shape != expected:
            raise ValueError(f"{name}: expected labels of shape {layout} = {expected}, got shape {labels.shape}")
        _check_not_empty(name, labels, "labels")
        _check_finite(name, logits, "the logits")
        labels = as_array_like(labels, like=logits, dtype=np.int64)
        low, high = dispatch.op("reduce", labels).min_max(labels)
        if low < 0 or high >= K:
            raise ValueError(
                f"{name}: labels must be class indices in [0, K) = [0, {K}), got values from {low} to {high}"
            )
        if self.weight is not None:
            if self.weight.shape[0] != K:
                raise ValueError(
                    f"{name}: weight has {self.weight.shape[0]} entries, but the logits have K={K} classes"
                )
        loss, probs = dispatch.op("softmax_cross_entropy", logits, labels).forward(logits, labels, self.weight)
        if np.isnan(loss):  # the logits are finite: only a zero total weight gives 0 / 0
            raise ValueError(f"{name}: the labels of this batch all have weight 0; the weighted mean is undefined")
        self.save_for_backward((probs, labels))
        return loss

    def backward(self):
        """d loss / d logits, of the logits' shape and dtype."""
        probs, labels = self.saved_for_backward()
        return dispatch.op("softmax_cross_entropy", probs).backward(probs, labels, self.weight)

    def extra_repr(self):
        return "" if self.weight is None else f"weight={self.weight.tolist()}"


class MSELoss(Layer):
    """Mean squared error, mean((pred - target)^2) over all elements (PyTorch's ``MSELoss``).

    ``pred`` and ``target`` must have the same shape (no broadcasting: a (N, 1) prediction
    against an (N,) target is an error, not an (N, N) matrix). A float target of the other
    precision is converted to pred's dtype (it is data, it gets no gradient).
    """

    def __init__(self):
        super().__init__()

    def forward(self, pred, target):
        pred, target = _checked_pair(type(self).__name__, pred, target)
        loss = dispatch.op("mse", pred, target).forward(pred, target)
        self.save_for_backward((pred, target))
        return loss

    def backward(self):
        """d loss / d pred, of pred's shape and dtype."""
        pred, target = self.saved_for_backward()
        return dispatch.op("mse", pred).backward(pred, target)


class _ElementwiseLoss(Layer):
    """What SmoothL1Loss and BCEWithLogitsLoss share: PyTorch's ``reduction`` and a backward
    that takes the upstream gradient only for "none". A subclass names its op and gives
    ``op_args()`` (the op's arguments after the two arrays)."""

    op_name = None

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def checked(self, pred, target):
        return _checked_pair(type(self).__name__, pred, target)

    def forward(self, pred, target):
        pred, target = self.checked(pred, target)
        loss = dispatch.op(self.op_name, pred, target).forward(pred, target, *self.op_args(pred), self.reduction)
        self.save_for_backward((pred, target))
        return loss

    def backward(self, dy=None):
        """d loss / d pred, of pred's shape and dtype. ``dy``: the upstream gradient of the
        per-element losses with reduction "none" (their shape), None otherwise."""
        name = type(self).__name__
        pred, target = self.saved_for_backward()
        if self.reduction == "none":
            if dy is None:
                raise TypeError(f"{name}: with reduction='none' backward(dy) needs the upstream gradient of the losses")
            check_float_array(name, dy, "upstream gradient dy", device=device_of(pred))
            check_grad_shape(name, dy, pred.shape)
            check_grad_dtype(name, dy, pred, "pred")
        elif dy is not None:
            raise TypeError(
                f"{name}: with reduction={self.reduction!r} the loss is a number: call backward() without dy"
            )
        return dispatch.op(self.op_name, pred).backward(pred, target, *self.op_args(pred), self.reduction, dy)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class SmoothL1Loss(_ElementwiseLoss):
    """Smooth L1 loss, PyTorch's ``SmoothL1Loss(reduction="mean", beta=1.0)``: per element
    d^2 / (2 beta) where |d| < beta, |d| - beta / 2 elsewhere, d = pred - target (the math:
    ``minidl/ops/smooth_l1.py``). The box-regression loss of Fast R-CNN and SSD."""

    op_name = "smooth_l1"

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = real_number("SmoothL1Loss", "beta", beta, 0.0)

    def op_args(self, pred):
        return (self.beta,)

    def extra_repr(self):
        return f"{super().extra_repr()}, beta={self.beta}"


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Binary cross-entropy on logits, PyTorch's ``BCEWithLogitsLoss(reduction="mean",
    pos_weight=None)``: ``loss_fn(logits, targets)`` with targets in [0, 1] of the logits'
    shape; the sigmoid is inside, computed so that no logit overflows (the math:
    ``minidl/ops/bce_with_logits.py``). ``pos_weight`` (C,): how much a positive of class c
    (the last axis) counts, for imbalanced targets."""

    op_name = "bce_with_logits"

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        if pos_weight is not None:
            w = np.asarray(pos_weight)
            if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating) or w.ndim != 1:
                raise TypeError(f"BCEWithLogitsLoss: pos_weight must be a 1-D array of real numbers (C,), got {w!r}")
            if not np.isfinite(w).all() or (w < 0).any():
                raise ValueError(f"BCEWithLogitsLoss: pos_weight must be finite and >= 0, got {w.tolist()}")
            pos_weight = w.astype(np.float64)
        self.pos_weight = pos_weight

    def checked(self, pred, target):
        name = type(self).__name__
        pred, target = _checked_pair(name, pred, target, ("logits", "targets"))
        low, high = dispatch.op("reduce", target).min_max(target)
        if low < 0 or high > 1:
            raise ValueError(f"{name}: targets must be in [0, 1] (probabilities), got values from {low} to {high}")
        if self.pos_weight is not None and (pred.ndim < 1 or pred.shape[-1] != self.pos_weight.size):
            raise ValueError(
                f"{name}: pos_weight has {self.pos_weight.size} entries, one per class of the last axis, "
                f"but the logits have shape {tuple(pred.shape)}"
            )
        return pred, target

    def op_args(self, pred):
        return (self.pos_weight,)

    def extra_repr(self):
        weight = "" if self.pos_weight is None else f", pos_weight={self.pos_weight.tolist()}"
        return f"{super().extra_repr()}{weight}"
