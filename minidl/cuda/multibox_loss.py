"""The SSD loss on the GPU (the math, the layouts and the mining rule:
``minidl/ops/multibox_loss.py``). One thread per anchor (n, a) in every step, each calling
the CPU file's per-anchor function:

    confidence:      the softmax and the cross-entropy of its anchor (``softmax_position``)
    hard negatives:  its anchor's rank among the image's negatives, counted over the image
                     (O(A) per thread, no sort, no atomics: the same choice as the CPU)
    forward:         its anchor's three terms into (3, N, A), summed by ``_reduce.total_of``
    backward:        its anchor's column of dpred
"""

import numpy as np
from numba import cuda

from ..device import empty, to_host
from ..ops import multibox_loss, softmax_cross_entropy
from ..ops.multibox_loss import MINED, POSITIVE, scale_of  # noqa: F401 (the same codes and rule on both targets)
from ._launch import from_cpu, launch
from ._reduce import total_of

softmax_position = from_cpu(softmax_cross_entropy.softmax_position)
anchor_choice = from_cpu(multibox_loss.anchor_choice)
anchor_terms = from_cpu(multibox_loss.anchor_terms)
anchor_gradient = from_cpu(multibox_loss.anchor_gradient)


@cuda.jit
def confidence_kernel(z, target, probs, ce):
    N, K, A = z.shape
    for q in range(cuda.grid(1), N * A, cuda.gridsize(1)):
        n, a = q // A, q % A
        lse = softmax_position(z, n, a, probs)
        ce[n, a] = lse - z[n, int(target[n, 4, a]), a]


@cuda.jit
def hard_negatives_kernel(ce, labels, neg_pos_ratio, selected):
    N, A = ce.shape
    for q in range(cuda.grid(1), N * A, cuda.gridsize(1)):
        n, a = q // A, q % A
        selected[n, a] = anchor_choice(ce, labels, neg_pos_ratio, n, a)


@cuda.jit
def terms_kernel(pred, target, ce, selected, beta, terms):
    """terms[:, n, a] = (loc, conf, positive) of anchor (n, a)."""
    N, V, A = pred.shape
    for q in range(cuda.grid(1), N * A, cuda.gridsize(1)):
        n, a = q // A, q % A
        loc, conf, positive = anchor_terms(pred, target, ce, selected, beta, n, a)
        terms[0, n, a] = loc
        terms[1, n, a] = conf
        terms[2, n, a] = positive


@cuda.jit
def backward_kernel(pred, target, probs, selected, beta, scale, dpred):
    N, V, A = pred.shape
    for q in range(cuda.grid(1), N * A, cuda.gridsize(1)):
        anchor_gradient(pred, target, probs, selected, beta, scale, q // A, q % A, dpred)


def confidence(pred, target):
    """As the CPU op: (ce (N, A), probs (N, K, A)) on the device."""
    N, V, A = pred.shape
    probs, ce = empty((N, V - 4, A), pred.dtype, like=pred), empty((N, A), pred.dtype, like=pred)
    launch(confidence_kernel, N * A, pred[:, 4:, :], target, probs, ce)
    return ce, probs


def hard_negatives(ce, target, neg_pos_ratio=3):
    """As the CPU op: selected (N, A) int8 on the device."""
    selected = empty(ce.shape, np.int8, like=ce)
    launch(hard_negatives_kernel, ce.size, ce, target[:, 4, :], int(neg_pos_ratio), selected)
    return selected


def forward(pred, target, ce, selected, beta=1.0):
    """As the CPU op: (L, loc, conf, N_pos) as floats."""
    N, V, A = pred.shape
    terms = empty((3, N, A), np.float64, like=pred)
    launch(terms_kernel, N * A, pred, target, ce, selected, pred.dtype.type(beta), terms)
    loc, conf, positives = (float(to_host(total_of(terms[k]))[0]) for k in range(3))
    return scale_of(positives) * (loc + conf), loc, conf, positives


def backward(pred, target, probs, selected, num_pos, beta=1.0):
    """As the CPU op: d L / d pred on the device."""
    N, V, A = pred.shape
    dpred = empty(pred.shape, pred.dtype, like=pred)
    scale = pred.dtype.type(scale_of(num_pos))
    launch(backward_kernel, N * A, pred, target, probs, selected, pred.dtype.type(beta), scale, dpred)
    return dpred
