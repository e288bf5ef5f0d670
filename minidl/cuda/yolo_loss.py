"""The YOLO v1 loss on the GPU (the layout, the responsible box, the four terms and their
derivatives: ``minidl/ops/yolo_loss.py``). One thread per grid cell (n, i, j) does what the
CPU loop does for that cell:

    assign:    the responsible box r and its IoU with the target (the same ``cell_box_iou``
               function as the CPU: a Numba function a CUDA kernel can call)
    loss:      the cell's four terms into a (N*S*S, 4) array, then one block adds each
               column with the shared-memory tree (``_reduce.py``)
    backward:  the cell's 5B + C derivatives
"""
import math

import numpy as np
from numba import cuda, float64

from ..device import empty, to_host
from ..ops.yolo_loss import BAD_OBJ, BAD_SIZE, TERMS, VALID, _first_nonzero, cell_box_iou
from ._launch import THREADS, launch, launch_rows
from ._reduce import block_sum


@cuda.jit
def invalid_target_kernel(target, code):
    """Thread q, cell (n, i, j): code = BAD_OBJ (obj not 0 or 1), BAD_SIZE (w or h < 0)
    or VALID."""
    N, S = target.shape[0], target.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        obj = target[n, i, j, 4]
        if obj != 0 and obj != 1:
            code[n, i, j] = BAD_OBJ
        elif target[n, i, j, 2] < 0 or target[n, i, j, 3] < 0:
            code[n, i, j] = BAD_SIZE
        else:
            code[n, i, j] = VALID


@cuda.jit
def assign_kernel(pred, target, B, responsible, iou):
    """Thread q, cell (n, i, j): responsible = the box of highest IoU with the target (the
    first on ties), -1 without an object; iou = that IoU, 0 without an object."""
    N, S = pred.shape[0], pred.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        responsible[n, i, j] = -1
        iou[n, i, j] = 0.0
        if target[n, i, j, 4] != 1:
            continue
        tx, ty = float64(target[n, i, j, 0]), float64(target[n, i, j, 1])
        tw, th = float64(target[n, i, j, 2]), float64(target[n, i, j, 3])
        best = -1.0
        r = 0
        for b in range(B):
            k = 5 * b
            w = float64(pred[n, i, j, k + 2]) ** 2  # width = sw^2: no square root taken
            h = float64(pred[n, i, j, k + 3]) ** 2
            v = cell_box_iou(S, i, j, float64(pred[n, i, j, k]), float64(pred[n, i, j, k + 1]), w, h,
                             tx, ty, tw, th)
            if v > best:  # strict '>': ties keep the first box
                best = v
                r = b
        responsible[n, i, j] = r
        iou[n, i, j] = best


@cuda.jit
def cell_terms_kernel(pred, target, responsible, iou, B, lambda_coord, lambda_noobj, cell_terms):
    """Thread q, cell (n, i, j): its contributions to (coord, obj, noobj, class), weighted
    by the lambdas, into cell_terms[q, :]."""
    N, S = pred.shape[0], pred.shape[1]
    C = target.shape[3] - 5
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        r = responsible[n, i, j]
        coord = 0.0
        obj = 0.0
        noobj = 0.0
        cls = 0.0
        for b in range(B):
            k = 5 * b
            conf = float64(pred[n, i, j, k + 4])
            if b == r:
                dx = float64(target[n, i, j, 0]) - float64(pred[n, i, j, k])
                dy = float64(target[n, i, j, 1]) - float64(pred[n, i, j, k + 1])
                dw = math.sqrt(float64(target[n, i, j, 2])) - float64(pred[n, i, j, k + 2])
                dh = math.sqrt(float64(target[n, i, j, 3])) - float64(pred[n, i, j, k + 3])
                coord += dx * dx + dy * dy + dw * dw + dh * dh
                obj += (iou[n, i, j] - conf) ** 2
            else:
                noobj += conf * conf
        if r >= 0:
            for c in range(C):
                d = float64(target[n, i, j, 5 + c]) - float64(pred[n, i, j, 5 * B + c])
                cls += d * d
        cell_terms[q, 0] = lambda_coord * coord
        cell_terms[q, 1] = obj
        cell_terms[q, 2] = lambda_noobj * noobj
        cell_terms[q, 3] = cls


@cuda.jit
def sum_terms_kernel(cell_terms, N, terms):
    """One block: terms[t] = (sum over the cells of cell_terms[:, t]) / N, for each of the 4 terms."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    for t in range(4):
        acc = 0.0
        for q in range(tid, cell_terms.shape[0], cuda.blockDim.x):
            acc += cell_terms[q, t]
        s[tid] = acc
        total = block_sum(s, tid, THREADS)
        if tid == 0:
            terms[t] = total / N


@cuda.jit
def yolo_loss_backward_kernel(pred, target, responsible, iou, B, lambda_coord, lambda_noobj, dpred):
    """Thread q, cell (n, i, j): its 5B + C derivatives (see the CPU file's docstring)."""
    N, S = pred.shape[0], pred.shape[1]
    C = target.shape[3] - 5
    scale = 2.0 / N
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        r = responsible[n, i, j]
        for k in range(5 * B + C):
            dpred[n, i, j, k] = 0.0
        for b in range(B):
            k = 5 * b
            conf = float64(pred[n, i, j, k + 4])
            if b == r:
                g = scale * lambda_coord
                dpred[n, i, j, k] = g * (float64(pred[n, i, j, k]) - float64(target[n, i, j, 0]))
                dpred[n, i, j, k + 1] = g * (float64(pred[n, i, j, k + 1]) - float64(target[n, i, j, 1]))
                dpred[n, i, j, k + 2] = g * (float64(pred[n, i, j, k + 2]) - math.sqrt(float64(target[n, i, j, 2])))
                dpred[n, i, j, k + 3] = g * (float64(pred[n, i, j, k + 3]) - math.sqrt(float64(target[n, i, j, 3])))
                dpred[n, i, j, k + 4] = scale * (conf - iou[n, i, j])
            else:
                dpred[n, i, j, k + 4] = scale * lambda_noobj * conf
        if r >= 0:
            for c in range(C):
                p = 5 * B + c
                dpred[n, i, j, p] = scale * (float64(pred[n, i, j, p]) - float64(target[n, i, j, 5 + c]))


def _cells(pred, target, S, B, C):
    """pred as (N, S, S, 5B + C) and target (N, S, S, 5 + C), device arrays of one dtype
    (``nn.YOLOLoss`` moves and converts the target)."""
    p = pred.reshape(pred.shape[0], S, S, 5 * B + C)
    return p, target.reshape(p.shape[0], S, S, 5 + C)


def invalid_target_cell(target):
    """The first invalid cell of the device target as (n, i, j, code), or None."""
    code = empty(target.shape[:3], np.int8, like=target)
    launch(invalid_target_kernel, code.size, target, code)
    return _first_nonzero(to_host(code))


def assign(pred, target, S, B, C):
    """(responsible (N, S, S) int64, iou (N, S, S) float64), device arrays."""
    p, t = _cells(pred, target, S, B, C)
    responsible = empty(p.shape[:3], np.int64, like=p)
    iou = empty(p.shape[:3], np.float64, like=p)
    launch(assign_kernel, responsible.size, p, t, B, responsible, iou)
    return responsible, iou


def loss_terms(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """The loss with the assignment held fixed, as a dict of its four terms (floats)."""
    p, t = _cells(pred, target, S, B, C)
    cells = p.shape[0] * S * S
    cell_terms = empty((cells, 4), np.float64, like=p)
    launch(cell_terms_kernel, cells, p, t, responsible, iou, B, float(lambda_coord), float(lambda_noobj), cell_terms)
    terms = empty(4, np.float64, like=p)
    launch_rows(sum_terms_kernel, 1, cell_terms, p.shape[0], terms)
    return {name: float(v) for name, v in zip(TERMS, to_host(terms))}


def forward(pred, target, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """The YOLO v1 loss: (loss float, terms dict, responsible, iou), as on the CPU."""
    responsible, iou = assign(pred, target, S, B, C)
    terms = loss_terms(pred, target, responsible, iou, S, B, C, lambda_coord, lambda_noobj)
    return sum(terms.values()), terms, responsible, iou


def backward(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """d loss / d pred, with pred's shape and dtype, on the device."""
    p, t = _cells(pred, target, S, B, C)
    dpred = empty(p.shape, p.dtype, like=p)
    launch(yolo_loss_backward_kernel, p.shape[0] * S * S, p, t, responsible, iou, B, float(lambda_coord),
           float(lambda_noobj), dpred)
    return dpred.reshape(pred.shape)
