"""The YOLO v1 loss on the GPU (the layout, the responsible box, the four terms and their
derivatives: ``minidl/ops/yolo_loss.py``). One thread per grid cell (n, i, j) calls the CPU
file's function of one cell (Numba functions that a CUDA kernel can call):

    assign:    ``assign_cell``: the responsible box r and its IoU with the target
    loss:      ``cell_terms``: the cell's four sums into a (N*S*S, 4) array, then one block
               adds each column with the shared-memory tree (``_reduce.py``)
    backward:  ``cell_gradient``: the cell's 5B + C derivatives
"""

import numpy as np
from numba import cuda, float64

from ..device import empty, to_host
from ..ops import yolo_loss
from ..ops.yolo_loss import BAD_OBJ, BAD_SIZE, TERMS, _first_nonzero  # noqa: F401  (the codes, as on the CPU)
from ._launch import THREADS, from_cpu, launch, launch_rows
from ._reduce import block_sum

assign_cell = from_cpu(yolo_loss.assign_cell)
cell_terms = from_cpu(yolo_loss.cell_terms)
cell_gradient = from_cpu(yolo_loss.cell_gradient)
target_cell_code = from_cpu(yolo_loss.target_cell_code)


@cuda.jit
def invalid_target_kernel(target, code):
    """Thread q, cell (n, i, j): code = the cell's ``target_cell_code`` (VALID, BAD_OBJ, BAD_SIZE)."""
    N, S = target.shape[0], target.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        code[n, i, j] = target_cell_code(target, n, i, j)


@cuda.jit
def assign_kernel(pred, target, B, responsible, iou):
    """Thread q, cell (n, i, j): its responsible box and IoU (``assign_cell``)."""
    N, S = pred.shape[0], pred.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        responsible[n, i, j], iou[n, i, j] = assign_cell(pred, target, B, n, i, j)


@cuda.jit
def cell_terms_kernel(pred, target, responsible, iou, B, sums):
    """Thread q, cell (n, i, j): its sums in (coord, obj, noobj, class) into sums[q, :]."""
    N, S = pred.shape[0], pred.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        sums[q, 0], sums[q, 1], sums[q, 2], sums[q, 3] = cell_terms(
            pred, target, responsible[n, i, j], iou[n, i, j], B, n, i, j
        )


@cuda.jit
def sum_terms_kernel(sums, N, lambda_coord, lambda_noobj, terms):
    """One block: terms[t] = lambda_t * (sum over the cells of sums[:, t]) / N, with the
    lambdas (lambda_coord, 1, lambda_noobj, 1)."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    for t in range(4):
        acc = 0.0
        for q in range(tid, sums.shape[0], cuda.blockDim.x):
            acc += sums[q, t]
        s[tid] = acc
        total = block_sum(s, tid, THREADS)
        if tid == 0:
            weight = lambda_coord if t == 0 else (lambda_noobj if t == 2 else 1.0)
            terms[t] = weight * total / N


@cuda.jit
def yolo_loss_backward_kernel(pred, target, responsible, iou, B, lambda_coord, lambda_noobj, dpred):
    """Thread q, cell (n, i, j): its 5B + C derivatives (``cell_gradient``)."""
    N, S = pred.shape[0], pred.shape[1]
    for q in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        n, i, j = q // (S * S), q // S % S, q % S
        cell_gradient(
            pred, target, responsible[n, i, j], iou[n, i, j], B, lambda_coord, lambda_noobj, 2.0 / N, n, i, j, dpred
        )


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
    sums = empty((cells, 4), np.float64, like=p)
    launch(cell_terms_kernel, cells, p, t, responsible, iou, B, sums)
    terms = empty(4, np.float64, like=p)
    launch_rows(sum_terms_kernel, 1, sums, p.shape[0], float(lambda_coord), float(lambda_noobj), terms)
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
    launch(
        yolo_loss_backward_kernel,
        p.shape[0] * S * S,
        p,
        t,
        responsible,
        iou,
        B,
        float(lambda_coord),
        float(lambda_noobj),
        dpred,
    )
    return dpred.reshape(pred.shape)
