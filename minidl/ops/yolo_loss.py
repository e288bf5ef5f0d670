r"""The YOLO v1 loss (Redmon et al., 2016, "You Only Look Once"): object detection as one regression.

In symbols:

$$\begin{aligned}
L = \frac1N \sum_{n} \sum_{i,j} \Big[ & \lambda_{coord} \sum_b \mathbb{1}^{obj}_b \big( (x - \hat x_b)^2 + (y - \hat y_b)^2
    + (\sqrt{w} - \widehat{sw}_b)^2 + (\sqrt{h} - \widehat{sh}_b)^2 \big) \\
  & + \sum_b \mathbb{1}^{obj}_b \big(\mathrm{IoU} - \widehat{conf}_b\big)^2
    + \lambda_{noobj} \sum_b \big(1 - \mathbb{1}^{obj}_b\big)\, \widehat{conf}_b^{\,2}
    + obj \sum_c \big(p_c - \hat p_c\big)^2 \Big]
\end{aligned}$$

Layout. The image is cut into an S x S grid; cell (i, j) is row i (y, downwards) and
column j (x). In every cell the network predicts B boxes and C class scores, 5B + C
numbers, so a batch of predictions reshapes (row-major) to (N, S, S, 5B + C):

    pred[n, i, j, 5b : 5b + 5] = [x^_b, y^_b, sw^_b, sh^_b, conf^_b]     box b = 0 .. B-1
    pred[n, i, j, 5B + c]      = p^_c                                    class c = 0 .. C-1

x^_b, y^_b: the box centre's offset inside the cell (in [0, 1) when it lies in the cell);
sw^_b, sh^_b: the SQUARE ROOTS of its width and height, as fractions of the image. The
network predicts the roots directly, as in the paper, so no square root of a prediction
is ever taken (sw^_b may even be negative: the width is sw^_b^2). conf^_b: its confidence.

    target[n, i, j] = [x, y, w, h, obj, p_0 .. p_{C-1}]                  (N, S, S, 5 + C)

obj = 1 when the centre of an object lies in cell (i, j): then (x, y) is that centre's
offset in the cell, (w, h) its size as fractions of the image, p its one-hot class.
obj = 0 otherwise, and then x, y, w, h and p are not used.

Which box is responsible. In a cell with an object, box b and the target are decoded to
image coordinates,

    box b:   centre ((j + x^_b) / S, (i + y^_b) / S),  size (sw^_b^2, sh^_b^2)
    target:  centre ((j + x) / S,    (i + y) / S),     size (w, h)

and the responsible box r is the one with the highest IoU with the target (the first on
ties). Write

    1obj[n, i, j, b] = 1 if obj[n, i, j] = 1 and b = r[n, i, j], and 0 otherwise
    iou[n, i, j]     = IoU(box r, target box)

``assign`` computes r and iou first. In the loss they are CONSTANTS: no gradient flows
through the choice of r, nor through the IoU, which is only the target of the confidence.

Forward: a sum over the images n, the cells (i, j) and the boxes b, divided by the batch
size N (the YOLO v1 formula, with lambda_obj = lambda_classes = 1; the paper's
lambda_coord = 5 and lambda_noobj = 0.5):

    L = 1/N sum_{n,i,j} [
          lambda_coord * sum_b 1obj_b * ((x - x^_b)^2 + (y - y^_b)^2
                                         + (sqrt(w) - sw^_b)^2 + (sqrt(h) - sh^_b)^2)   "coord"
        +                sum_b 1obj_b * (iou - conf^_b)^2                               "obj"
        + lambda_noobj * sum_b (1 - 1obj_b) * conf^_b^2                                 "noobj"
        +                obj * sum_c (p_c - p^_c)^2 ]                                   "class"

Only the targets' w and h go through a square root, and they are >= 0.

Backward. Every prediction appears in at most one squared term, so its derivative is
2/N times (prediction - its target) times the weight of that term:

    responsible box b = r of a cell with an object:
        dx^_b  = 2/N * lambda_coord * (x^_b - x)            dy^_b  = 2/N * lambda_coord * (y^_b - y)
        dsw^_b = 2/N * lambda_coord * (sw^_b - sqrt(w))     dsh^_b = 2/N * lambda_coord * (sh^_b - sqrt(h))
        dconf^_b = 2/N * (conf^_b - iou)                    (iou is constant: no d iou / d x^_b)
    every other box (all B boxes of a cell without an object):
        dconf^_b = 2/N * lambda_noobj * conf^_b
        dx^_b = dy^_b = dsw^_b = dsh^_b = 0                 (they are in no term of L)
    class scores:  dp^_c = 2/N * (p^_c - p_c) in a cell with an object, 0 in the others.

Like every op, this one assumes valid input (obj in {0, 1}, w, h >= 0, finite numbers):
``nn.YOLOLoss`` checks all of it before calling here.
"""

import math

import numpy as np
from numba import njit

from ..device import empty

TERMS = ("coord", "obj", "noobj", "class")  # the four parts of the loss, in this order


@njit(cache=True)
def iou_xyxy(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2):
    """IoU of boxes a and b given by their corners (x1, y1, x2, y2), x1 <= x2, y1 <= y2:

        IoU = area(a & b) / area(a | b),   area(a | b) = area(a) + area(b) - area(a & b)

    0 when the union is empty (two boxes of zero area). ``minidl.detection.box_iou`` uses
    this same function.
    """
    inter_w = min(ax2, bx2) - max(ax1, bx1)
    inter_h = min(ay2, by2) - max(ay1, by1)
    inter = max(inter_w, 0.0) * max(inter_h, 0.0)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if union <= 0.0:
        return 0.0
    return inter / union


@njit(cache=True)
def cell_box_iou(S, i, j, x, y, w, h, tx, ty, tw, th):
    """IoU, in image coordinates, of two boxes given in cell (i, j)'s coordinates: centre
    offsets (x, y) and size (w, h), against (tx, ty) and (tw, th). Centre ((j + x) / S,
    (i + y) / S); corners at the centre -/+ half the size."""
    cx, cy = (j + x) / S, (i + y) / S
    tcx, tcy = (j + tx) / S, (i + ty) / S
    return iou_xyxy(
        cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, tcx - tw / 2, tcy - th / 2, tcx + tw / 2, tcy + th / 2
    )


# Each kernel below is a loop over the cells (n, i, j) around a function of one cell; the
# CUDA kernels (minidl/cuda/yolo_loss.py) call the same cell functions, one thread per cell.


@njit(cache=True, inline="always")
def assign_cell(pred, target, B, n, i, j):
    """(r, IoU(box r, target)) for cell (n, i, j): the box of highest IoU with the target,
    the first on ties; (-1, 0.0) in a cell without an object."""
    if target[n, i, j, 4] != 1:
        return -1, 0.0
    S = pred.shape[1]
    tx, ty = float(target[n, i, j, 0]), float(target[n, i, j, 1])
    tw, th = float(target[n, i, j, 2]), float(target[n, i, j, 3])
    best = -1.0  # every IoU is >= 0, so box 0 always beats this
    r = 0
    for b in range(B):
        k = 5 * b
        x, y = float(pred[n, i, j, k]), float(pred[n, i, j, k + 1])
        w = float(pred[n, i, j, k + 2]) ** 2  # width = sw^2: no square root taken
        h = float(pred[n, i, j, k + 3]) ** 2
        v = cell_box_iou(S, i, j, x, y, w, h, tx, ty, tw, th)
        if v > best:  # strict '>': ties keep the first box
            best = v
            r = b
    return r, best


@njit(cache=True)
def assign_kernel(pred, target, B, responsible, iou):
    """The responsible box of every cell with an object, and its IoU with the target.

    pred (N, S, S, 5B + C), target (N, S, S, 5 + C). Overwrites responsible (N, S, S)
    int64: r, or -1 in a cell without an object; iou (N, S, S) float64: IoU(box r,
    target), 0 in a cell without an object.
    """
    N, S = pred.shape[0], pred.shape[1]
    for n in range(N):
        for i in range(S):
            for j in range(S):
                responsible[n, i, j], iou[n, i, j] = assign_cell(pred, target, B, n, i, j)


@njit(cache=True, inline="always")
def cell_terms(pred, target, r, iou, B, n, i, j):
    """The sums of cell (n, i, j) in the four terms, before the lambdas and 1/N:
    (coord, obj, noobj, class). r and iou: the cell's assignment (r = -1: no object)."""
    C = target.shape[3] - 5
    coord = 0.0
    obj = 0.0
    noobj = 0.0
    cls = 0.0
    for b in range(B):
        k = 5 * b
        conf = float(pred[n, i, j, k + 4])
        if b == r:
            dx = float(target[n, i, j, 0]) - float(pred[n, i, j, k])
            dy = float(target[n, i, j, 1]) - float(pred[n, i, j, k + 1])
            dw = math.sqrt(float(target[n, i, j, 2])) - float(pred[n, i, j, k + 2])
            dh = math.sqrt(float(target[n, i, j, 3])) - float(pred[n, i, j, k + 3])
            coord += dx * dx + dy * dy + dw * dw + dh * dh
            obj += (iou - conf) ** 2
        else:
            noobj += conf * conf
    if r >= 0:
        for c in range(C):
            d = float(target[n, i, j, 5 + c]) - float(pred[n, i, j, 5 * B + c])
            cls += d * d
    return coord, obj, noobj, cls


@njit(cache=True)
def yolo_loss_kernel(pred, target, responsible, iou, B, lambda_coord, lambda_noobj, terms):
    """The four sums of L (coord, obj, noobj, class), each divided by N, written into the
    (4,) float64 array ``terms``; L is their sum. ``responsible`` and ``iou`` (from
    ``assign_kernel``) are constants here. Shapes as in ``assign_kernel``."""
    N, S = pred.shape[0], pred.shape[1]
    sums = np.zeros(4)
    for n in range(N):
        for i in range(S):
            for j in range(S):
                cell = cell_terms(pred, target, responsible[n, i, j], iou[n, i, j], B, n, i, j)
                for t in range(4):
                    sums[t] += cell[t]
    terms[0] = lambda_coord * sums[0] / N
    terms[1] = sums[1] / N
    terms[2] = lambda_noobj * sums[2] / N
    terms[3] = sums[3] / N


@njit(cache=True, inline="always")
def cell_gradient(pred, target, r, iou, B, lambda_coord, lambda_noobj, scale, n, i, j, dpred):
    """dpred[n, i, j, :] = the derivatives of the module docstring for cell (n, i, j),
    scale = 2 / N (r, iou: the cell's assignment)."""
    C = target.shape[3] - 5
    for k in range(5 * B + C):
        dpred[n, i, j, k] = 0.0  # what no term below reaches has gradient 0
    for b in range(B):
        k = 5 * b
        conf = float(pred[n, i, j, k + 4])
        if b == r:
            g = scale * lambda_coord
            x, y = float(pred[n, i, j, k]), float(pred[n, i, j, k + 1])
            sw, sh = float(pred[n, i, j, k + 2]), float(pred[n, i, j, k + 3])
            dpred[n, i, j, k] = g * (x - float(target[n, i, j, 0]))
            dpred[n, i, j, k + 1] = g * (y - float(target[n, i, j, 1]))
            dpred[n, i, j, k + 2] = g * (sw - math.sqrt(float(target[n, i, j, 2])))
            dpred[n, i, j, k + 3] = g * (sh - math.sqrt(float(target[n, i, j, 3])))
            dpred[n, i, j, k + 4] = scale * (conf - iou)
        else:  # x^, y^, sw^, sh^ of this box are in no term: their gradient stays 0
            dpred[n, i, j, k + 4] = scale * lambda_noobj * conf
    if r >= 0:
        for c in range(C):
            p = 5 * B + c
            dpred[n, i, j, p] = scale * (float(pred[n, i, j, p]) - float(target[n, i, j, 5 + c]))


@njit(cache=True)
def yolo_loss_backward_kernel(pred, target, responsible, iou, B, lambda_coord, lambda_noobj, dpred):
    """dpred (N, S, S, 5B + C), pred's dtype, overwritten: the derivatives in the module
    docstring."""
    N, S = pred.shape[0], pred.shape[1]
    for n in range(N):
        for i in range(S):
            for j in range(S):
                cell_gradient(
                    pred,
                    target,
                    responsible[n, i, j],
                    iou[n, i, j],
                    B,
                    lambda_coord,
                    lambda_noobj,
                    2.0 / N,
                    n,
                    i,
                    j,
                    dpred,
                )


# The codes of invalid_target_kernel: what is wrong with a cell of the target.
VALID, BAD_OBJ, BAD_SIZE, BAD_CLASS = 0, 1, 2, 3


@njit(cache=True, inline="always")
def target_cell_code(target, n, i, j):
    """BAD_OBJ when obj = target[n, i, j, 4] is not 0 or 1, else BAD_SIZE when w or h
    (target[n, i, j, 2:4]) is negative, else BAD_CLASS when the class entries
    target[n, i, j, 5:] are not one-hot (obj = 1) or all zero (obj = 0), else VALID."""
    obj = target[n, i, j, 4]
    if obj != 0 and obj != 1:
        return BAD_OBJ
    if target[n, i, j, 2] < 0 or target[n, i, j, 3] < 0:
        return BAD_SIZE
    ones = 0.0
    for c in range(5, target.shape[3]):
        v = target[n, i, j, c]
        if v != 0 and v != 1:
            return BAD_CLASS
        ones += v
    if ones != obj:
        return BAD_CLASS
    return VALID


@njit(cache=True)
def invalid_target_kernel(target, code):
    """code[n, i, j] = the cell's ``target_cell_code``; code is overwritten."""
    N, S = target.shape[0], target.shape[1]
    for n in range(N):
        for i in range(S):
            for j in range(S):
                code[n, i, j] = target_cell_code(target, n, i, j)


def _cells(pred, target, S, B, C):
    """pred as a C-contiguous (N, S, S, 5B + C) array, target (N, S, S, 5 + C) in pred's
    dtype (it is data: it gets no gradient)."""
    pred = np.ascontiguousarray(pred)
    p = pred.reshape(pred.shape[0], S, S, 5 * B + C)
    t = np.ascontiguousarray(target, dtype=pred.dtype).reshape(p.shape[0], S, S, 5 + C)
    return p, t


def invalid_target_cell(target):
    """The first cell of target (N, S, S, 5 + C) that is not a valid target, as
    ``(n, i, j, code)`` with code BAD_OBJ (obj not 0 or 1), BAD_SIZE (w or h < 0) or
    BAD_CLASS (the classes not one-hot where obj = 1, not all 0 where obj = 0); None
    when every cell is valid. (What the layer checks before computing the loss.)"""
    target = np.ascontiguousarray(target)
    code = empty(target.shape[:3], np.int8, like=target)
    invalid_target_kernel(target, code)
    return _first_nonzero(code)


def _first_nonzero(code):
    """(n, i, j, code) of the first nonzero entry of the host array ``code``, or None."""
    bad = np.argwhere(code)
    if len(bad) == 0:
        return None
    n, i, j = (int(v) for v in bad[0])
    return n, i, j, int(code[n, i, j])


def assign(pred, target, S, B, C):
    """The responsible box of each cell with an object and its IoU with the target.

    pred: any shape that reshapes to (N, S, S, 5B + C); target (N, S, S, 5 + C). Returns
    (responsible (N, S, S) int64, -1 where there is no object; iou (N, S, S) float64).
    """
    p, t = _cells(pred, target, S, B, C)
    responsible = empty(p.shape[:3], np.int64, like=p)
    iou = empty(p.shape[:3], np.float64, like=p)
    assign_kernel(p, t, B, responsible, iou)
    return responsible, iou


def loss_terms(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """The loss with the assignment (responsible, iou) held fixed, as its four parts: a dict
    {"coord", "obj", "noobj", "class"} of floats (each already divided by N) whose sum is L.

    This is the function that ``backward`` differentiates (r and iou are constants)."""
    p, t = _cells(pred, target, S, B, C)
    terms = empty(4, np.float64, like=p)
    yolo_loss_kernel(p, t, responsible, iou, B, float(lambda_coord), float(lambda_noobj), terms)
    return {name: float(v) for name, v in zip(TERMS, terms)}


def forward(pred, target, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """The YOLO v1 loss.

    pred: float32/float64, any shape that reshapes row-major to (N, S, S, 5B + C), e.g. a
    fully connected head's (N, S * S * (5B + C)); target: (N, S, S, 5 + C).
    Returns (loss as a Python float, its four terms as a dict, responsible, iou); the
    assignment (responsible, iou) is what ``backward`` needs.
    """
    responsible, iou = assign(pred, target, S, B, C)
    terms = loss_terms(pred, target, responsible, iou, S, B, C, lambda_coord, lambda_noobj)
    return sum(terms.values()), terms, responsible, iou


def backward(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """d loss / d pred, with pred's shape and dtype (responsible, iou from ``forward``)."""
    p, t = _cells(pred, target, S, B, C)
    dpred = empty(p.shape, p.dtype, like=p)
    yolo_loss_backward_kernel(p, t, responsible, iou, B, float(lambda_coord), float(lambda_noobj), dpred)
    return dpred.reshape(np.shape(pred))
