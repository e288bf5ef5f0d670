"""The SSD loss: the mining rule (ratio, hardest first, ties by index), the loss against a
plain-Python sum, its gradient with the mining held fixed, and the layer's checks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import nn
from minidl.ops import multibox_loss as op
from tests.helpers import assert_gradient, raises
from tests.strategies import seeds


def problem(seed, N=2, K=3, A=9, positive=0.25, beta_kink=1.0):
    """pred (N, 4 + K, A) and target (N, 5, A), about ``positive`` of the anchors with an
    object; offsets kept away from smooth L1's kinks at |d| = beta and d = 0."""
    rng = np.random.default_rng(seed)
    pred = 2 * rng.standard_normal((N, 4 + K, A))
    target = np.zeros((N, 5, A))
    target[:, :4] = rng.standard_normal((N, 4, A))
    target[:, 4] = rng.integers(1, K, (N, A)) * (rng.random((N, A)) < positive)
    d = pred[:, :4] - target[:, :4]
    pred[:, :4][np.abs(np.abs(d) - beta_kink) < 1e-3] += 0.01
    pred[:, :4][np.abs(d) < 1e-3] += 0.01
    return pred, target


def plain_loss(pred, target, ratio, beta):
    """The docstring's rule, in plain Python: (loss, selected)."""
    N, V, A = pred.shape
    loss, num_pos = 0.0, 0
    selected = np.zeros((N, A), dtype=np.int8)
    for n in range(N):
        ce = []
        for a in range(A):
            z = pred[n, 4:, a]
            ce.append(np.log(np.sum(np.exp(z))) - z[int(target[n, 4, a])])
        positives = [a for a in range(A) if target[n, 4, a] > 0]
        negatives = sorted((a for a in range(A) if target[n, 4, a] == 0), key=lambda a: (-ce[a], a))
        mined = negatives[: min(ratio * len(positives), len(negatives))]
        for a in positives:
            for j in range(4):
                d = abs(pred[n, j, a] - target[n, j, a])
                loss += d * d / (2 * beta) if d < beta else d - beta / 2
        for a in positives + mined:
            loss += ce[a]
        selected[n, positives], selected[n, mined] = op.POSITIVE, op.MINED
        num_pos += len(positives)
    return loss / max(num_pos, 1), selected


@given(seed=seeds, N=st.integers(1, 3), K=st.integers(2, 4), A=st.integers(1, 12), ratio=st.integers(1, 4))
def test_loss_and_mining_match_the_plain_rule(seed, N, K, A, ratio):
    pred, target = problem(seed, N, K, A)
    ce, _ = op.confidence(pred, target)
    selected = op.hard_negatives(ce, target, ratio)
    expected_loss, expected_selected = plain_loss(pred, target, ratio, 1.0)
    np.testing.assert_array_equal(selected, expected_selected)
    assert op.forward(pred, target, ce, selected, 1.0)[0] == pytest.approx(expected_loss, rel=1e-12)


@given(seed=seeds, ratio=st.integers(1, 4))
def test_mining_keeps_ratio_times_the_positives_and_the_hardest(seed, ratio):
    pred, target = problem(seed, N=3, A=20)
    ce, _ = op.confidence(pred, target)
    selected = op.hard_negatives(ce, target, ratio)
    for n in range(3):
        positive = target[n, 4] > 0
        negative = ~positive
        mined = selected[n] == op.MINED
        assert (selected[n][positive] == op.POSITIVE).all()
        assert mined.sum() == min(ratio * positive.sum(), negative.sum())
        if mined.any() and (negative & ~mined).any():  # every mined negative is at least as hard as any other
            assert ce[n][mined].min() >= ce[n][negative & ~mined].max()


def test_ties_go_to_the_lower_index_and_no_positive_gives_zero():
    pred = np.zeros((1, 6, 4))  # every anchor the same scores: every CE equal
    target = np.zeros((1, 5, 4))
    target[0, 4, 2] = 1  # one positive: 3 negatives mined, all of them
    ce, _ = op.confidence(pred, target)
    np.testing.assert_array_equal(op.hard_negatives(ce, target, 1), [[op.MINED, 0, op.POSITIVE, 0]])
    target[0, 4, 2] = 0
    selected = op.hard_negatives(ce, target, 3)
    assert not selected.any()
    assert op.forward(pred, target, ce, selected)[0] == 0.0


@given(seed=seeds, N=st.integers(1, 2), K=st.integers(2, 4), A=st.integers(2, 8), beta=st.sampled_from([0.5, 1.0, 2.0]))
def test_gradient_with_the_mining_held_fixed(seed, N, K, A, beta):
    pred, target = problem(seed, N, K, A, positive=0.4, beta_kink=beta)
    ce, probs = op.confidence(pred, target)
    selected = op.hard_negatives(ce, target, 3)
    _, _, _, num_pos = op.forward(pred, target, ce, selected, beta)

    def loss(p):
        return op.forward(p, target, op.confidence(p, target)[0], selected, beta)[0]

    assert_gradient(op.backward(pred, target, probs, selected, num_pos, beta), loss, pred)


def test_gradient_is_zero_outside_the_chosen_anchors_and_sums_to_zero_over_classes():
    pred, target = problem(3, A=16)
    layer = nn.MultiBoxLoss()
    loss = layer(pred, target)
    dpred = layer.backward()
    left_out = layer.selected == 0
    assert (dpred.transpose(0, 2, 1)[left_out] == 0).all()  # (N, A, V) rows of the anchors left out
    np.testing.assert_allclose(dpred[:, 4:].sum(axis=1), 0, atol=1e-12)
    assert layer.terms["loc"] + layer.terms["conf"] == pytest.approx(loss)
    assert layer.num_pos == int((target[:, 4] > 0).sum())


def test_layer_errors():
    pred, target = problem(0)
    layer = nn.MultiBoxLoss()
    with raises(ValueError, "MultiBoxLoss", "(N, 4 + K, A)"):
        layer(pred[:, :5], target)
    with raises(ValueError, "MultiBoxLoss", "(N, 5, A)", "(2, 5, 9)"):
        layer(pred, target[:, :, :8])
    bad = target.copy()
    bad[1, 4, 3] = 3.0  # K = 3 classes: labels 0, 1, 2
    with raises(ValueError, "MultiBoxLoss", "[0, 3)", "(n, a) = (1, 3)"):
        layer(pred, bad)
    bad[1, 4, 3] = 0.5
    with raises(ValueError, "MultiBoxLoss", "whole numbers"):
        layer(pred, bad)
    nan = pred.copy()
    nan[0, 0, 0] = np.nan
    with raises(ValueError, "MultiBoxLoss", "NaN"):
        layer(nan, target)
    with raises(ValueError, "MultiBoxLoss", "neg_pos_ratio"):
        nn.MultiBoxLoss(neg_pos_ratio=0)
