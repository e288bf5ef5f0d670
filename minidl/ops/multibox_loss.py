r"""The SSD loss (Liu et al., 2016, "SSD: Single Shot MultiBox Detector"): smooth L1 on the
box offsets of the anchors that hold an object, softmax cross-entropy on the classes of
those anchors and of the hardest background anchors, divided by the number of positives.

In symbols, for the anchors a of image n, with P the positive anchors (label > 0, matched
to an object), M the mined negatives (below) and N_pos = |P| over the whole batch:

$$L = \frac{1}{N_{pos}} \Big( \sum_{a \in P} \sum_{j=0}^{3} \mathrm{smoothL1}_\beta\big(\hat t_{j a} - t_{j a}\big)
      \; + \sum_{a \in P \cup M} \mathrm{CE}_a \Big),
  \qquad \mathrm{CE}_a = \log \sum_{k} e^{z_{k a}} - z_{c_a a}$$

Layouts. pred (N, 4 + K, A): for anchor a, pred[n, 0:4, a] are the predicted offsets
t-hat = (tx, ty, tw, th) (SSD's centre-size coding, ``minidl.detection.encode_boxes``)
and pred[n, 4:, a] the K class scores z, class 0 being the background. target
(N, 5, A): target[n, 0:4, a] the encoded offsets t of the anchor's object and
target[n, 4, a] its label c_a (0 background, 1 .. K-1 the classes), a whole number stored
as a float so that one array holds the whole target. (A convolutional head's output
(N, (4 + K) A_cell, H, W) reads as (N, 4 + K, A_cell H W) without a copy; see
``minidl.detection.anchors`` for the anchor order.)

Hard negative mining. Nearly all anchors are background: counting every one of them
would drown the few positives. In each image n, the negatives are ranked by their
cross-entropy, the largest first (the background anchors the network gets most wrong),
and only the first k_n are kept:

    k_n = min(neg_pos_ratio * pos_n, neg_n)            (3 : 1 in SSD)
    rank[n, a] = #{negatives b of image n: CE[n, b] > CE[n, a], or CE[n, b] = CE[n, a] and b < a}
    a in M  <=>  a is a negative and rank[n, a] < k_n

(ties go to the lower index, so the choice is deterministic on both targets).

Forward, with s = 1 / max(N_pos, 1) (an image with no positive keeps no negative either,
and a batch without positives has loss 0):

    loc  = sum_{n, a in P} sum_{j < 4} smooth_l1(pred[n, j, a] - target[n, j, a])
    conf = sum_{n, a in P or M} CE[n, a]
    L    = s (loc + conf)

Backward, with the positives and the mined negatives held fixed (the mining is a choice of
terms, not a differentiable function; so is N_pos):

    dpred[n, j, a]     = s * smooth_l1'(pred[n, j, a] - target[n, j, a])        j < 4, a in P
    dpred[n, 4 + k, a] = s * (softmax(z[n, :, a])_k - [k == c_a])              a in P or M
    0 everywhere else.

The steps are separate functions so that a gradient check can hold the mining fixed:
``confidence`` (CE and softmax of every anchor), ``hard_negatives`` (the choice),
``forward`` (the sums), ``backward``.
"""

import numpy as np
from numba import njit

from ..device import empty
from .smooth_l1 import smooth_l1_element
from .softmax_cross_entropy import softmax_position

POSITIVE, MINED = 1, 2  # the codes of ``selected``; 0: the anchor is not in the loss


@njit(cache=True, inline="always")
def anchor_choice(ce, labels, neg_pos_ratio, n, a):
    """POSITIVE, MINED or 0 for anchor a of image n: its label, or its rank among the
    image's negatives by cross-entropy against k_n = min(ratio pos_n, neg_n)."""
    if labels[n, a] > 0:
        return POSITIVE
    A = labels.shape[1]
    positives = 0
    rank = 0
    for b in range(A):
        if labels[n, b] > 0:
            positives += 1
        elif ce[n, b] > ce[n, a] or (ce[n, b] == ce[n, a] and b < a):
            rank += 1
    k = min(neg_pos_ratio * positives, A - positives)
    return MINED if rank < k else 0


@njit(cache=True, inline="always")
def anchor_terms(pred, target, ce, selected, beta, n, a):
    """(loc, conf, positive) of anchor a of image n: its smooth-L1 sum over the 4 offsets
    if positive, its cross-entropy if positive or mined, 1.0 if positive."""
    loc, conf, positive = 0.0, 0.0, 0.0
    if selected[n, a] == POSITIVE:
        positive = 1.0
        for j in range(4):
            value, _ = smooth_l1_element(pred[n, j, a] - target[n, j, a], beta)
            loc += value
    if selected[n, a] > 0:
        conf = ce[n, a]
    return loc, conf, positive


@njit(cache=True, inline="always")
def anchor_gradient(pred, target, probs, selected, beta, scale, n, a, dpred):
    """dpred[n, :, a] (every row, zeros included) for anchor a of image n."""
    V = pred.shape[1]
    for v in range(V):
        dpred[n, v, a] = 0.0
    if selected[n, a] == POSITIVE:
        for j in range(4):
            _, slope = smooth_l1_element(pred[n, j, a] - target[n, j, a], beta)
            dpred[n, j, a] = scale * slope
    if selected[n, a] > 0:
        c = int(target[n, 4, a])
        for k in range(V - 4):
            dpred[n, 4 + k, a] = scale * (probs[n, k, a] - (1.0 if k == c else 0.0))


@njit(cache=True)
def confidence_kernel(z, target, probs, ce):
    """probs[n, :, a] = softmax(z[n, :, a]) and ce[n, a] = lse - z[n, c_a, a]."""
    N, K, A = z.shape
    for n in range(N):
        for a in range(A):
            lse = softmax_position(z, n, a, probs)
            ce[n, a] = lse - z[n, int(target[n, 4, a]), a]


@njit(cache=True)
def hard_negatives_kernel(ce, labels, neg_pos_ratio, selected):
    """selected[n, a] = anchor_choice(...) for every anchor."""
    N, A = ce.shape
    for n in range(N):
        for a in range(A):
            selected[n, a] = anchor_choice(ce, labels, neg_pos_ratio, n, a)


@njit(cache=True)
def forward_kernel(pred, target, ce, selected, beta, sums):
    """sums = [loc, conf, N_pos] over the batch, in float64."""
    N, V, A = pred.shape
    loc, conf, positives = 0.0, 0.0, 0.0
    for n in range(N):
        for a in range(A):
            l, c, p = anchor_terms(pred, target, ce, selected, beta, n, a)
            loc += l
            conf += c
            positives += p
    sums[0], sums[1], sums[2] = loc, conf, positives


@njit(cache=True)
def backward_kernel(pred, target, probs, selected, beta, scale, dpred):
    N, V, A = pred.shape
    for n in range(N):
        for a in range(A):
            anchor_gradient(pred, target, probs, selected, beta, scale, n, a, dpred)


def confidence(pred, target):
    """(ce (N, A), probs (N, K, A)) in pred's dtype: every anchor's cross-entropy against
    its label and its class probabilities."""
    N, V, A = pred.shape
    probs, ce = empty((N, V - 4, A), pred.dtype, like=pred), empty((N, A), pred.dtype, like=pred)
    confidence_kernel(pred[:, 4:, :], target, probs, ce)
    return ce, probs


def hard_negatives(ce, target, neg_pos_ratio=3):
    """selected (N, A) int8: POSITIVE (1) for the anchors with an object, MINED (2) for the
    kept negatives, 0 for the rest (the rule is in the module docstring)."""
    selected = empty(ce.shape, np.int8, like=ce)
    hard_negatives_kernel(ce, target[:, 4, :], int(neg_pos_ratio), selected)
    return selected


def scale_of(num_pos):
    """s = 1 / max(N_pos, 1), the normalisation."""
    return 1.0 / max(num_pos, 1.0)


def forward(pred, target, ce, selected, beta=1.0):
    """(L, loc, conf, N_pos): the loss and its two sums (before the division) as floats,
    and the number of positives."""
    sums = empty(3, np.float64, like=pred)
    forward_kernel(pred, target, ce, selected, pred.dtype.type(beta), sums)
    loc, conf, positives = (float(v) for v in sums)
    return scale_of(positives) * (loc + conf), loc, conf, positives


def backward(pred, target, probs, selected, num_pos, beta=1.0):
    """d L / d pred (N, 4 + K, A), pred's dtype, with the choice ``selected`` held fixed."""
    dpred = empty(pred.shape, pred.dtype, like=pred)
    backward_kernel(pred, target, probs, selected, pred.dtype.type(beta), pred.dtype.type(scale_of(num_pos)), dpred)
    return dpred
