"""``YOLOLoss(S, B, C, lambda_coord=5.0, lambda_noobj=0.5)``: the YOLO v1 detection loss
(the formula, the choice of the responsible box and the derivatives are in
``minidl/ops/yolo_loss.py``).

    loss_fn = nn.YOLOLoss(S=7, B=2, C=3)
    loss = loss_fn(model(x), target)      # pred (N, 7 * 7 * 13) or (N, 7, 7, 13); target (N, 7, 7, 8)
    model.backward(loss_fn.backward())    # d loss / d pred, in pred's shape
    loss_fn.terms                         # {"coord": ..., "obj": ..., "noobj": ..., "class": ...}

``minidl.detection.encode_yolo_targets`` builds the target from boxes and labels.
"""

from .. import dispatch
from ..device import as_array_like, to_host
from .checks import check_float_array, positive_int, real_number
from .loss import _check_finite, _check_not_empty
from .module import Layer


class YOLOLoss(Layer):
    """The YOLO v1 loss for an S x S grid, B boxes per cell and C classes.

    ``loss_fn(pred, target)``: pred, float32/float64, any shape that reshapes (row-major)
    to (N, S, S, 5B + C), box b of a cell being [x, y, sqrt_w, sqrt_h, conf] at positions
    5b .. 5b+4 and the C class scores last; target (N, S, S, 5 + C) = [x, y, w, h, obj,
    one-hot class] (a float target of the other precision is converted to pred's dtype).
    Returns the loss, summed over cells and boxes and divided by N, as a Python float;
    ``backward()`` returns d loss / d pred with pred's shape and dtype. After each call,
    ``terms`` holds the loss's four parts {"coord", "obj", "noobj", "class"}.

    The responsible boxes and their IoUs are constants of the gradient (the spec's
    stop-gradient). ``minidl.gradcheck.check_layer`` differentiates the whole forward, in
    which the IoU moves with the box, so it reports a difference at the x, y, sqrt_w,
    sqrt_h of the responsible boxes; that is intended (tests/ops/test_yolo_loss.py checks
    the gradient with the assignment held fixed).
    """

    def __init__(self, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
        super().__init__()
        name = type(self).__name__
        self.S = positive_int(name, "S (the grid size)", S)
        self.B = positive_int(name, "B (the boxes per cell)", B)
        self.C = positive_int(name, "C (the number of classes)", C)
        self.lambda_coord = real_number(name, "lambda_coord", lambda_coord, 0.0)
        self.lambda_noobj = real_number(name, "lambda_noobj", lambda_noobj, 0.0)
        self.terms = None

    def _check(self, pred, target):
        name = type(self).__name__
        S, B, C = self.S, self.B, self.C
        check_float_array(name, pred, "pred")
        check_float_array(name, target, "target")
        cell = (S, S, 5 + C)
        if target.ndim != 4 or tuple(target.shape[1:]) != cell:
            raise ValueError(
                f"{name}: expected the target of shape (N, S, S, 5 + C) = (N, {S}, {S}, {5 + C}) "
                f"([x, y, w, h, obj, one-hot class] per cell), got shape {tuple(target.shape)}"
            )
        per_image = S * S * (5 * B + C)
        if pred.ndim < 2 or pred.size != pred.shape[0] * per_image:
            raise ValueError(
                f"{name}: expected pred to reshape (row-major) to (N, S, S, 5B + C) = "
                f"(N, {S}, {S}, {5 * B + C}), e.g. (N, {per_image}) from a fully connected head, "
                f"got shape {tuple(pred.shape)}"
            )
        if pred.shape[0] != target.shape[0]:
            raise ValueError(f"{name}: batch sizes differ: pred has N={pred.shape[0]}, the target N={target.shape[0]}")
        _check_not_empty(name, pred, "pred")
        _check_finite(name, pred, "pred")
        _check_finite(name, target, "the target")
        ops = dispatch.op("yolo_loss", target)
        bad = ops.invalid_target_cell(target)
        if bad is None:
            return
        n, i, j, code = bad
        cell = to_host(target)[n, i, j]  # only to write the message
        if code == ops.BAD_OBJ:
            raise ValueError(
                f"{name}: the obj flags target[..., 4] must be 0 or 1, got {cell[4]} "
                f"in cell (n, i, j) = ({n}, {i}, {j})"
            )
        if code == ops.BAD_SIZE:
            w, h = cell[2], cell[3]
            raise ValueError(
                f"{name}: the target's w, h (target[..., 2:4], fractions of the image whose square "
                f"roots are taken) must be >= 0, got w={w}, h={h} in cell (n, i, j) = ({n}, {i}, {j})"
            )
        if code == ops.BAD_CLASS:
            raise ValueError(
                f"{name}: the class entries target[..., 5:] must be one-hot where obj = 1 and all 0 where obj = 0 "
                f"(YOLO v1: one object per cell), got {cell[5:].tolist()} with obj = {cell[4]} "
                f"in cell (n, i, j) = ({n}, {i}, {j})"
            )

    def forward(self, pred, target):
        self._check(pred, target)
        target = as_array_like(target, like=pred, dtype=pred.dtype)
        loss, terms, responsible, iou = dispatch.op("yolo_loss", pred, target).forward(
            pred, target, self.S, self.B, self.C, self.lambda_coord, self.lambda_noobj
        )
        self.terms = terms
        self.save_for_backward((pred, target, responsible, iou))
        return loss

    def backward(self):
        """d loss / d pred, of pred's shape and dtype."""
        pred, target, responsible, iou = self.saved_for_backward()
        return dispatch.op("yolo_loss", pred).backward(
            pred, target, responsible, iou, self.S, self.B, self.C, self.lambda_coord, self.lambda_noobj
        )

    def extra_repr(self):
        return f"S={self.S}, B={self.B}, C={self.C}, lambda_coord={self.lambda_coord}, lambda_noobj={self.lambda_noobj}"
