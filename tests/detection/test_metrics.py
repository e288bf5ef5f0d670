"""Metrics: a hand-worked 3x4 mask, a brute-force count over random labels of any shape,
the invariances (permuting pixels, swapping truth and prediction, renaming classes,
splitting into batches), absent classes, and every bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl
from minidl.metrics import accuracy, confusion_matrix, iou_from_confusion, mean_iou, per_class_iou, pixel_accuracy
from tests.helpers import raises

# A 3x4 mask with 3 classes, worked by hand.
TRUE = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
PRED = np.array([[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 0, 0]])
# (t, p) pairs: row 0 (0,0) (0,1) (1,1) (1,1); row 1 (0,0) (0,0) (1,1) (1,2); row 2 (2,2) (2,2) (2,0) (2,0)
M_BY_HAND = np.array([[3, 1, 0], [0, 3, 1], [2, 0, 2]])
# TP, FP (column minus TP), FN (row minus TP): class 0: 3, 2, 1; class 1: 3, 1, 1; class 2: 2, 1, 2
IOU_BY_HAND = np.array([3 / 6, 3 / 5, 2 / 5])


@st.composite
def label_pairs(draw):
    """``(y_true, y_pred, K)``: two integer label arrays of one random shape, values in [0, K)."""
    K = draw(st.integers(1, 5))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
    return rng.integers(0, K, shape).astype(dtype), rng.integers(0, K, shape).astype(dtype), K


def brute_force_confusion(y_true, y_pred, K):
    M = np.zeros((K, K), dtype=np.int64)
    for t, p in zip(y_true.reshape(-1).tolist(), y_pred.reshape(-1).tolist()):
        M[t, p] += 1
    return M


def brute_force_iou(y_true, y_pred, k):
    """|truth = k  and  pred = k| / |truth = k  or  pred = k|, counted pixel by pixel."""
    inter = union = 0
    for t, p in zip(y_true.reshape(-1).tolist(), y_pred.reshape(-1).tolist()):
        inter += t == k and p == k
        union += t == k or p == k
    return np.nan if union == 0 else inter / union


def test_the_hand_worked_mask():
    np.testing.assert_array_equal(confusion_matrix(TRUE, PRED, 3), M_BY_HAND)
    assert accuracy(TRUE, PRED) == pixel_accuracy(TRUE, PRED) == 8 / 12
    np.testing.assert_allclose(per_class_iou(TRUE, PRED, 3), IOU_BY_HAND, rtol=1e-15)
    assert mean_iou(TRUE, PRED, 3) == pytest.approx(0.5, rel=1e-15)
    # a batch of masks (N, H, W) is counted pixel by pixel the same way
    np.testing.assert_array_equal(
        confusion_matrix(np.stack([TRUE, TRUE]), np.stack([PRED, TRUE]), 3), M_BY_HAND + np.diag([4, 4, 4])
    )


def test_an_absent_class_has_nan_iou_and_is_left_out_of_the_mean():
    iou = per_class_iou(TRUE, PRED, 5)  # classes 3 and 4 appear nowhere
    np.testing.assert_allclose(iou[:3], IOU_BY_HAND, rtol=1e-15)
    assert np.isnan(iou[3]) and np.isnan(iou[4])
    assert mean_iou(TRUE, PRED, 5) == pytest.approx(0.5, rel=1e-15)


def test_a_class_only_predicted_or_only_true_has_iou_zero():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])  # class 2 predicted once, never true
    np.testing.assert_allclose(per_class_iou(y_true, y_pred, 3), [1 / 2, 1.0, 0.0])
    np.testing.assert_allclose(per_class_iou(y_pred, y_true, 3), [1 / 2, 1.0, 0.0])  # class 2 only true


def test_all_background_predicted_scores_high_accuracy_but_low_mean_iou():
    """Why segmentation reports mean IoU: pixel accuracy is ruled by the background."""
    y_true = np.zeros((10, 10), dtype=np.int64)
    y_true[:2, :5] = 1  # a small object: 10 % of the pixels
    y_pred = np.zeros_like(y_true)
    assert pixel_accuracy(y_true, y_pred) == 0.9
    np.testing.assert_allclose(per_class_iou(y_true, y_pred, 2), [0.9, 0.0])
    assert mean_iou(y_true, y_pred, 2) == pytest.approx(0.45)


@given(labels=label_pairs())
def test_against_a_brute_force_count(labels):
    y_true, y_pred, K = labels
    M = confusion_matrix(y_true, y_pred, K)
    assert M.dtype == np.int64 and M.shape == (K, K)
    np.testing.assert_array_equal(M, brute_force_confusion(y_true, y_pred, K))
    assert M.sum() == y_true.size
    np.testing.assert_array_equal(M.sum(axis=1), np.bincount(y_true.reshape(-1), minlength=K))  # rows: the truth
    np.testing.assert_array_equal(M.sum(axis=0), np.bincount(y_pred.reshape(-1), minlength=K))  # columns: predictions
    n_correct = sum(t == p for t, p in zip(y_true.reshape(-1).tolist(), y_pred.reshape(-1).tolist()))
    assert accuracy(y_true, y_pred) == pytest.approx(n_correct / y_true.size, rel=1e-15)
    assert accuracy(y_true, y_pred) == pytest.approx(np.trace(M) / M.sum(), rel=1e-15)
    iou = per_class_iou(y_true, y_pred, K)
    assert iou.dtype == np.float64 and iou.shape == (K,)
    np.testing.assert_allclose(iou, [brute_force_iou(y_true, y_pred, k) for k in range(K)], rtol=1e-15)
    defined = iou[~np.isnan(iou)]
    assert np.all((0 <= defined) & (defined <= 1))
    assert mean_iou(y_true, y_pred, K) == pytest.approx(np.mean(defined), rel=1e-15)


@given(labels=label_pairs(), seed=st.integers(0, 2**32 - 1))
def test_permuting_the_pixels_changes_nothing(labels, seed):
    y_true, y_pred, K = labels
    order = np.random.default_rng(seed).permutation(y_true.size)
    shuffled_true, shuffled_pred = y_true.reshape(-1)[order], y_pred.reshape(-1)[order]  # the same permutation for both
    np.testing.assert_array_equal(
        confusion_matrix(shuffled_true, shuffled_pred, K), confusion_matrix(y_true, y_pred, K)
    )
    assert accuracy(shuffled_true, shuffled_pred) == accuracy(y_true, y_pred)
    np.testing.assert_array_equal(per_class_iou(shuffled_true, shuffled_pred, K), per_class_iou(y_true, y_pred, K))


@given(labels=label_pairs())
def test_swapping_truth_and_prediction_transposes_the_matrix_and_keeps_the_iou(labels):
    y_true, y_pred, K = labels
    np.testing.assert_array_equal(confusion_matrix(y_pred, y_true, K), confusion_matrix(y_true, y_pred, K).T)
    np.testing.assert_array_equal(per_class_iou(y_pred, y_true, K), per_class_iou(y_true, y_pred, K))


@given(labels=label_pairs(), seed=st.integers(0, 2**32 - 1))
def test_renaming_the_classes_permutes_rows_columns_and_ious(labels, seed):
    y_true, y_pred, K = labels
    rename = np.random.default_rng(seed).permutation(K)  # class k becomes rename[k]
    M, M2 = confusion_matrix(y_true, y_pred, K), confusion_matrix(rename[y_true], rename[y_pred], K)
    np.testing.assert_array_equal(M2[np.ix_(rename, rename)], M)
    np.testing.assert_array_equal(
        per_class_iou(rename[y_true], rename[y_pred], K)[rename], per_class_iou(y_true, y_pred, K)
    )
    assert mean_iou(rename[y_true], rename[y_pred], K) == pytest.approx(mean_iou(y_true, y_pred, K), rel=1e-15)


@given(labels=label_pairs())
def test_batches_add_up_through_the_confusion_matrix(labels):
    y_true, y_pred, K = labels
    half = y_true.shape[0] // 2
    total = confusion_matrix(y_true[: half + 1], y_pred[: half + 1], K)
    if half + 1 < y_true.shape[0]:
        total = total + confusion_matrix(y_true[half + 1 :], y_pred[half + 1 :], K)
    np.testing.assert_array_equal(total, confusion_matrix(y_true, y_pred, K))
    np.testing.assert_array_equal(iou_from_confusion(total), per_class_iou(y_true, y_pred, K))


def test_a_perfect_prediction():
    y = np.array([[0, 1], [3, 3]])
    assert accuracy(y, y) == 1.0
    np.testing.assert_array_equal(confusion_matrix(y, y, 4), np.diag([1, 1, 0, 2]))
    iou = per_class_iou(y, y, 4)
    np.testing.assert_array_equal(iou[[0, 1, 3]], 1.0)
    assert np.isnan(iou[2]) and mean_iou(y, y, 4) == 1.0


def test_lists_are_accepted_and_metrics_are_reachable_from_minidl():
    assert minidl.metrics.accuracy([0, 1, 2], [0, 1, 1]) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(minidl.metrics.confusion_matrix([1, 0], [1, 1], 2), [[0, 1], [0, 1]])


def test_predictions_from_logits():
    logits = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    y_pred = logits.argmax(axis=1)
    assert accuracy(y_pred, y_pred) == 1.0 and confusion_matrix(y_pred, y_pred, 3).sum() == 2 * 4 * 5


# --- bad input ----------------------------------------------------------------------------------


LABEL_FUNCTIONS = [
    ("confusion_matrix", lambda t, p: confusion_matrix(t, p, 3)),
    ("accuracy", accuracy),
    ("pixel_accuracy", pixel_accuracy),
    ("per_class_iou", lambda t, p: per_class_iou(t, p, 3)),
    ("mean_iou", lambda t, p: mean_iou(t, p, 3)),
]
ids = [name for name, _ in LABEL_FUNCTIONS]


@pytest.mark.parametrize("name, f", LABEL_FUNCTIONS, ids=ids)
def test_shapes_must_match(name, f):
    with raises(ValueError, f"{name}: y_true and y_pred must have the same shape, got (2, 3, 3) and (2, 3)"):
        f(np.zeros((2, 3, 3), dtype=np.int64), np.zeros((2, 3), dtype=np.int64))
    with raises(ValueError, "y_true and y_pred must have the same shape, got (6,) and (2, 3)"):
        f(np.zeros(6, dtype=np.int64), np.zeros((2, 3), dtype=np.int64))


@pytest.mark.parametrize("name, f", LABEL_FUNCTIONS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
def test_labels_must_be_integers(name, f, dtype):
    good, bad = np.zeros(4, dtype=np.int64), np.zeros(4, dtype=dtype)
    with raises(TypeError, f"{name}: expected integer class labels for y_pred, got dtype {np.dtype(dtype)}"):
        f(good, bad)
    with raises(TypeError, f"{name}: expected integer class labels for y_true, got dtype {np.dtype(dtype)}"):
        f(bad, good)


def test_float_predictions_get_a_hint_about_argmax():
    with raises(TypeError, "for logits, take y_pred = logits.argmax(axis=1)"):
        accuracy(np.zeros(4, dtype=np.int64), np.zeros(4))


@pytest.mark.parametrize("name, f", LABEL_FUNCTIONS, ids=ids)
def test_labels_must_not_be_empty(name, f):
    with raises(ValueError, f"{name}: the labels are empty (shape (0, 4))"):
        f(np.zeros((0, 4), dtype=np.int64), np.zeros((0, 4), dtype=np.int64))


@pytest.mark.parametrize(
    "name, f", [c for c in LABEL_FUNCTIONS if "accuracy" not in c[0]], ids=[i for i in ids if "accuracy" not in i]
)
@pytest.mark.parametrize("bad, low, high", [(-1, -1, 2), (3, 0, 3), (7, 0, 7)])
def test_labels_must_be_in_range(name, f, bad, low, high):
    good = np.array([0, 1, 2, 2])
    wrong = np.array([0, 1, bad, 2])
    with raises(
        ValueError,
        f"{name}: y_true must hold class indices in [0, num_classes) = [0, 3), got values from {low} to {high}",
    ):
        f(wrong, good)
    with raises(
        ValueError,
        f"{name}: y_pred must hold class indices in [0, num_classes) = [0, 3), got values from {low} to {high}",
    ):
        f(good, wrong)


@pytest.mark.parametrize(
    "num_classes, err, message",
    [
        (0, ValueError, "num_classes must be at least 1, got 0"),
        (-2, ValueError, "num_classes must be at least 1, got -2"),
        (3.0, TypeError, "num_classes must be an int, got float"),
        (True, TypeError, "num_classes must be an int, got bool"),
    ],
)
@pytest.mark.parametrize("function", [confusion_matrix, per_class_iou, mean_iou])
def test_num_classes_must_be_a_positive_int(function, num_classes, err, message):
    with raises(err, f"{function.__name__}: {message}"):
        function(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), num_classes)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 2)])
def test_iou_from_confusion_needs_a_square_matrix(shape):
    with raises(ValueError, f"iou_from_confusion: expected a square confusion matrix (K, K), got shape {shape}"):
        iou_from_confusion(np.zeros(shape, dtype=np.int64))
