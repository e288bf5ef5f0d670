"""Detection utilities: box_iou, nms and mean_average_precision on cases worked by hand and
against brute-force references written from their definitions; decode_yolo and
encode_yolo_targets (round trip, and agreement with the loss's decoding); clear errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import nn
from minidl.detection import (
    box_iou,
    decode_yolo,
    encode_yolo_targets,
    interpolated_average_precision,
    mean_average_precision,
    nms,
)
from tests.helpers import raises
from tests.strategies import seeds


def reference_iou(a, b):
    """IoU from the definition, in plain Python: intersection over union of two boxes."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@st.composite
def integer_boxes(draw, max_boxes=8):
    """Boxes with small integer corners (exact areas, so exact IoU ties and IoUs equal to
    a threshold happen), zero widths and heights included."""
    k = draw(st.integers(0, max_boxes))
    rows = []
    for _ in range(k):
        x1, y1 = draw(st.integers(0, 8)), draw(st.integers(0, 8))
        rows.append((x1, y1, x1 + draw(st.integers(0, 6)), y1 + draw(st.integers(0, 6))))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# --- box_iou ---------------------------------------------------------------------------------------


def test_box_iou_hand_worked():
    a = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [1, 1, 1, 1]], dtype=float)
    b = np.array([[1, 0, 3, 2], [1, 1, 3, 3], [2, 0, 4, 2], [0, 0, 2, 2], [1, 1, 1, 1]], dtype=float)
    expected = np.array(
        [
            [2 / 6, 1 / 7, 0.0, 1.0, 0.0],  # half overlap; a corner; touching at x = 2; itself; a point inside
            [4 / 16, 4 / 16, 4 / 16, 4 / 16, 0.0],  # boxes inside the 4 x 4 box cover a quarter of it
            [0.0, 0.0, 0.0, 0.0, 0.0],  # a zero-area box: zero intersection, and a zero union with itself
        ]
    )
    iou = box_iou(a, b)
    assert iou.shape == (3, 5) and iou.dtype == np.float64
    np.testing.assert_allclose(iou, expected, rtol=1e-15)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 5) and box_iou(a, []).shape == (3, 0)


@given(boxes1=integer_boxes(), boxes2=integer_boxes())
def test_box_iou_is_the_definition_symmetric_and_in_unit_interval(boxes1, boxes2):
    iou = box_iou(boxes1, boxes2)
    expected = [[reference_iou(a, b) for b in boxes2.tolist()] for a in boxes1.tolist()]
    np.testing.assert_array_equal(iou, np.array(expected).reshape(len(boxes1), len(boxes2)))
    np.testing.assert_array_equal(box_iou(boxes2, boxes1), iou.T)
    assert ((iou >= 0) & (iou <= 1)).all()
    area = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    np.testing.assert_array_equal(np.diag(box_iou(boxes1, boxes1)), (area > 0).astype(float))


def test_box_iou_errors():
    with raises(ValueError, "box_iou: expected boxes1 of shape (k, 4), rows (x1, y1, x2, y2), got shape (4,)"):
        box_iou(np.array([0, 0, 1, 1.0]), np.zeros((1, 4)))
    with raises(
        ValueError,
        "box_iou: boxes2 must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2",
        "got [2.0, 0.0, 1.0, 1.0] in row 1",
    ):
        box_iou(np.zeros((1, 4)), [[0, 0, 1, 1], [2, 0, 1, 1]])
    with raises(ValueError, "box_iou: boxes1 hold NaN or inf"):
        box_iou([[0, 0, np.nan, 1]], np.zeros((1, 4)))


# --- nms -------------------------------------------------------------------------------------------


def reference_nms(boxes, scores, iou_threshold):
    """torchvision's semantics from the definition: in order of descending score (ties by
    index), a box is kept when its IoU with every box kept before it is <= the threshold."""
    boxes = boxes.tolist()
    kept = []
    for a in sorted(range(len(boxes)), key=lambda a: (-scores[a], a)):
        if all(reference_iou(boxes[a], boxes[b]) <= iou_threshold for b in kept):
            kept.append(a)
    return kept


def test_nms_hand_worked():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=float)  # IoU(0, 1) = 81/119
    scores = np.array([0.9, 0.8, 0.7])
    keep = nms(boxes, scores, 0.5)
    assert keep.dtype == np.int64 and keep.tolist() == [0, 2]
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 2]
    assert nms(boxes, scores[::-1].copy(), 0.5).tolist() == [2, 1]  # the highest score wins
    # a box is dropped only when its IoU is > the threshold: IoU = 0.5 exactly survives 0.5
    half = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], dtype=float)
    assert nms(half, [0.9, 0.8], 0.5).tolist() == [0, 1] and nms(half, [0.9, 0.8], 0.49).tolist() == [0]
    # a dropped box drops nothing: B is dropped by A, so C (which overlaps only B) stays
    chain = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], dtype=float)  # IoU(A, B) = IoU(B, C) = 1/3
    assert nms(chain, [0.9, 0.8, 0.7], 0.3).tolist() == [0, 2]
    # equal scores keep their order; duplicates of one box leave one
    assert nms(np.array([[0, 0, 1, 1]] * 3, dtype=float), [0.5, 0.5, 0.5], 0.5).tolist() == [0]
    empty = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.dtype == np.int64 and empty.shape == (0,)
    assert nms([], [], 0.5).shape == (0,)


@given(boxes=integer_boxes(12), data=st.data())
def test_nms_matches_the_brute_force_reference(boxes, data):
    scores = np.array(
        data.draw(st.lists(st.sampled_from([0.1, 0.5, 0.9, 0.3]), min_size=len(boxes), max_size=len(boxes)))
    )
    threshold = data.draw(st.sampled_from([0.0, 0.2, 1 / 3, 0.5, 0.7, 1.0]))
    assert nms(boxes, scores, threshold).tolist() == reference_nms(boxes, scores.tolist(), threshold)


def test_nms_errors():
    with raises(ValueError, "nms: expected scores of shape (2,), one per box, got shape (3,)"):
        nms(np.zeros((2, 4)), np.zeros(3), 0.5)
    with raises(ValueError, "nms: scores hold NaN or inf"):
        nms(np.zeros((1, 4)), [np.nan], 0.5)
    with raises(TypeError, "nms: iou_threshold must be a real number, got str"):
        nms(np.zeros((1, 4)), [1.0], "0.5")


# --- encode_yolo_targets and decode_yolo -------------------------------------------------------------


def test_encode_hand_worked():
    boxes = [np.array([[0.1, 0.2, 0.3, 0.6], [0.5, 0.5, 1.0, 1.0]]), np.zeros((0, 4))]
    labels = [np.array([2, 0]), np.array([], dtype=np.int64)]
    target = encode_yolo_targets(boxes, labels, S=2, C=3)
    assert target.shape == (2, 2, 2, 8) and target.dtype == np.float32
    expected = np.zeros((2, 2, 2, 8), dtype=np.float32)
    expected[0, 0, 0] = [0.4, 0.8, 0.2, 0.4, 1, 0, 0, 1]  # centre (0.2, 0.4): cell (0, 0), offsets (0.4, 0.8)
    expected[0, 1, 1] = [0.5, 0.5, 0.5, 0.5, 1, 1, 0, 0]  # centre (0.75, 0.75): cell (1, 1)
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    # a centre on the far edge belongs to the last cell; the first of two objects in one cell keeps it
    edge = encode_yolo_targets(
        [np.array([[0.8, 0.8, 1.0, 1.0], [0.9, 0.9, 1.0, 1.0]])], [np.array([1, 2])], 2, 3, np.float64
    )
    assert edge[0, :, :, 4].tolist() == [[0, 0], [0, 1]]
    np.testing.assert_allclose(edge[0, 1, 1], [0.8, 0.8, 0.2, 0.2, 1, 0, 1, 0])
    corner = encode_yolo_targets([np.array([[1.0, 1.0, 1.0, 1.0]])], [np.array([0])], 4, 1)
    assert corner[0, 3, 3].tolist() == [1, 1, 0, 0, 1, 1]


@given(S=st.integers(1, 7), B=st.integers(1, 3), C=st.integers(1, 4), n=st.integers(1, 3), seed=seeds)
def test_encode_then_decode_gives_the_boxes_back(S, B, C, n, seed):
    rng = np.random.default_rng(seed)
    boxes, labels = [], []
    for _ in range(n):
        k = int(rng.integers(0, S * S + 1))
        cells = rng.permutation(S * S)[:k]  # one object per cell
        centre = np.stack([cells % S, cells // S], axis=1) + rng.uniform(0.01, 0.99, (k, 2))
        size = rng.uniform(0.05, 1.0, (k, 2))
        boxes.append(np.concatenate([centre / S - size / 2, centre / S + size / 2], axis=1))
        labels.append(rng.integers(0, C, k))
    target = encode_yolo_targets(boxes, labels, S, C, dtype=np.float64)
    # a network that predicts its targets: box b = r of every object cell, confidence 1, one-hot classes
    r = int(rng.integers(B))
    pred = np.zeros((n, S, S, 5 * B + C))
    pred[..., 5 * r : 5 * r + 2] = target[..., 0:2]
    pred[..., 5 * r + 2 : 5 * r + 4] = np.sqrt(target[..., 2:4])
    pred[..., 5 * r + 4] = target[..., 4]
    pred[..., 5 * B :] = target[..., 5:]
    detections = decode_yolo(pred.reshape(n, -1), S, B, C, conf_threshold=0.5)
    assert len(detections) == n
    for d, b, l in zip(detections, boxes, labels):
        cell = np.floor((b[:, 0:2] + b[:, 2:4]) / 2 * S).astype(int)
        order = np.lexsort((cell[:, 0], cell[:, 1]))  # decode_yolo lists boxes by cell, row i then column j
        np.testing.assert_allclose(d["boxes"], b[order], atol=1e-12)
        assert d["labels"].tolist() == l[order].tolist() and d["labels"].dtype == np.int64
        np.testing.assert_array_equal(d["scores"], np.ones(len(b)))


def test_decode_hand_worked():
    S, B, C = 2, 2, 2
    pred = np.zeros((1, S, S, 12))
    pred[0, 1, 0, 0:5] = [0.5, 0.25, 0.4, -0.2, 0.8]  # cell (1, 0): centre (0.25, 0.625), size (0.16, 0.04)
    pred[0, 1, 0, 5:10] = [0.0, 0.0, 0.5, 0.5, 0.5]  # score 0.5 * 0.6 = 0.3: not > 0.3
    pred[0, 1, 0, 10:12] = [0.6, 0.2]  # label 0
    pred[0, 0, 1, 0:5] = [0.5, 0.5, 0.2, 0.2, 0.9]
    pred[0, 0, 1, 10:12] = [0.5, 0.5]  # a tie: the first class; score 0.45
    (d,) = decode_yolo(pred, S, B, C, conf_threshold=0.3)
    np.testing.assert_allclose(d["boxes"], [[0.73, 0.23, 0.77, 0.27], [0.17, 0.605, 0.33, 0.645]], atol=1e-15)
    np.testing.assert_allclose(d["scores"], [0.45, 0.48])
    assert d["labels"].tolist() == [0, 0]
    (none,) = decode_yolo(pred, S, B, C, conf_threshold=0.5)
    assert none["boxes"].shape == (0, 4) and none["scores"].shape == (0,) and none["labels"].shape == (0,)


@given(seed=seeds)
def test_decode_decodes_boxes_as_the_loss_does(seed):
    # the IoU that YOLOLoss gives its responsible box is the IoU of that decoded box with
    # the encoded target box
    S, B, C = 3, 2, 2
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.1, 0.9, (4, 2))
    size = rng.uniform(0.1, 0.5, (4, 2))
    boxes = [np.concatenate([centres - size / 2, centres + size / 2], axis=1)]
    target = encode_yolo_targets(boxes, [rng.integers(0, C, 4)], S, C, dtype=np.float64)
    pred = rng.uniform(0.0, 1.0, (1, S, S, 5 * B + C))
    loss_fn = nn.YOLOLoss(S, B, C)
    loss_fn(pred, target)
    responsible, iou = loss_fn.cache[2], loss_fn.cache[3]
    (d,) = decode_yolo(pred, S, B, C, conf_threshold=-np.inf)  # every box, in cell order
    decoded = d["boxes"].reshape(S, S, B, 4)
    for (i, j), r in np.ndenumerate(responsible[0]):
        if r >= 0:
            x, y, w, h = target[0, i, j, :4]
            cx, cy = (j + x) / S, (i + y) / S
            truth = [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]]
            ious = box_iou(decoded[i, j], truth)[:, 0]
            assert r == np.argmax(ious)
            np.testing.assert_allclose(iou[0, i, j], ious[r], rtol=1e-12, atol=1e-15)


def test_encode_and_decode_errors():
    with raises(
        ValueError,
        "encode_yolo_targets: box centres must lie in the image, 0 .. 1",
        "not pixels), got centre (20, 20) in image 0",
    ):
        encode_yolo_targets([np.array([[10.0, 10, 30, 30]])], [np.array([0])], 7, 3)
    with raises(ValueError, "encode_yolo_targets: labels must be in [0, C) = [0, 3), got 3 in image 0"):
        encode_yolo_targets([np.array([[0.1, 0.1, 0.3, 0.3]])], [np.array([3])], 7, 3)
    with raises(ValueError, "encode_yolo_targets: got boxes for 2 images but labels for 1"):
        encode_yolo_targets([np.zeros((0, 4))] * 2, [np.zeros(0, dtype=int)], 7, 3)
    with raises(ValueError, "encode_yolo_targets: expected the labels of image 0 of shape (1,), one per box"):
        encode_yolo_targets([np.array([[0.1, 0.1, 0.3, 0.3]])], [np.array([0, 1])], 7, 3)
    with raises(TypeError, "encode_yolo_targets: the labels of image 0 must be integers, got dtype float64"):
        encode_yolo_targets([np.array([[0.1, 0.1, 0.3, 0.3]])], [np.array([0.0])], 7, 3)
    with raises(
        ValueError, "decode_yolo: expected pred to reshape to (N, S, S, 5B + C) = (N, 7, 7, 13), got shape (2, 100)"
    ):
        decode_yolo(np.zeros((2, 100)), 7, 2, 3, 0.1)
    with raises(TypeError, "decode_yolo: S must be an int, got float"):
        decode_yolo(np.zeros((2, 100)), 7.0, 2, 3, 0.1)


# --- mean average precision --------------------------------------------------------------------------


def prediction(boxes, scores, labels):
    return {
        "boxes": np.array(boxes, dtype=float).reshape(-1, 4),
        "scores": np.array(scores, dtype=float),
        "labels": np.array(labels, dtype=np.int64),
    }


def truth(boxes, labels):
    return {"boxes": np.array(boxes, dtype=float).reshape(-1, 4), "labels": np.array(labels, dtype=np.int64)}


A, A2, B_ = [0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]  # three disjoint boxes


def test_interpolated_average_precision_hand_worked():
    # recall 0.5 at precision 1, then a false positive, then recall 1 at precision 2/3:
    # the envelope is 1 up to recall 0.5 and 2/3 after
    assert interpolated_average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # a dip in precision is filled by a later, higher one (the all-point interpolation)
    assert interpolated_average_precision([0.25, 0.25, 0.5, 0.75], [1.0, 0.5, 2 / 3, 0.75]) == pytest.approx(
        0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75
    )
    assert interpolated_average_precision([], []) == 0.0


def test_map_perfect_detections_score_one():
    targets = [truth([A, A2], [0, 1]), truth([B_], [2])]
    predictions = [prediction([A2, A], [0.3, 0.9], [1, 0]), prediction([B_], [0.5], [2])]
    assert mean_average_precision(predictions, targets) == 1.0


def test_map_empty_prediction_lists_score_zero():
    targets = [truth([A], [0]), truth([B_, A2], [1, 1])]
    empty = [prediction([], [], []), {"boxes": [], "scores": [], "labels": []}]
    assert mean_average_precision(empty, targets) == 0.0


def test_map_a_class_with_no_detections_counts_as_zero():
    targets = [truth([A, A2], [0, 1])]
    assert mean_average_precision([prediction([A], [0.9], [0])], targets) == 0.5  # (AP 1 + AP 0) / 2


def test_map_duplicate_detections_are_false_positives():
    targets = [truth([A, A2], [0, 0])]
    near_a = [0, 0, 10, 9]  # IoU 0.9 with A
    # A (TP), its duplicate (FP), then A2 (TP): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    predictions = [prediction([A, near_a, A2], [0.9, 0.8, 0.7], [0, 0, 0])]
    assert mean_average_precision(predictions, targets) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # the same duplicate ranked last costs nothing: the envelope is 1 up to recall 1
    predictions = [prediction([A, near_a, A2], [0.9, 0.6, 0.7], [0, 0, 0])]
    assert mean_average_precision(predictions, targets) == 1.0


def test_map_detections_are_ranked_over_all_images():
    targets = [truth([A], [0]), truth([A], [0])]
    predictions = [
        prediction([A2], [0.6], [0]),  # a false positive in image 0, ranked second
        prediction([A], [0.9], [0]),
    ]  # a true positive in image 1, ranked first
    assert mean_average_precision(predictions, targets) == 0.5
    predictions[0]["scores"][:] = 0.95  # ranked first now: precision 0, then 1/2 at recall 1/2
    assert mean_average_precision(predictions, targets) == 0.25


def test_map_matches_the_highest_iou_box_only_once():
    g1, g2 = [0, 0, 10, 10], [2, 0, 12, 10]
    targets = [truth([g1, g2], [0, 0])]
    # the second detection's best box is g1 (IoU 95/105), already matched: a false positive,
    # even though its IoU with g2 (85/115) is above the threshold (PASCAL VOC's rule)
    predictions = [prediction([g1, [0.5, 0, 10.5, 10]], [0.9, 0.8], [0, 0])]
    assert mean_average_precision(predictions, targets) == 0.5


def test_map_threshold_wrong_class_and_unknown_class():
    targets = [truth([[0, 0, 3, 1]], [0])]
    half = [1, 0, 4, 1]  # IoU 0.5 exactly
    assert mean_average_precision([prediction([half], [0.9], [0])], targets, iou_threshold=0.5) == 1.0
    assert mean_average_precision([prediction([half], [0.9], [0])], targets, iou_threshold=0.51) == 0.0
    assert mean_average_precision([prediction([[0, 0, 3, 1]], [0.9], [1])], targets) == 0.0  # the wrong class
    # detections of a class absent from the targets are not averaged in
    assert mean_average_precision([prediction([[0, 0, 3, 1], A], [0.9, 0.99], [0, 5])], targets) == 1.0


def reference_map(predictions, targets, iou_threshold):
    """An independent formulation of the same mAP: every true positive adds 1 / n_truth of
    recall, at the best precision reached at or after its rank."""
    classes = sorted({int(c) for t in targets for c in t["labels"]})
    aps = []
    for c in classes:
        dets = sorted(
            [
                (-float(s), n, b.tolist())
                for n, p in enumerate(predictions)
                for b, s, l in zip(p["boxes"], p["scores"], p["labels"])
                if l == c
            ],
            key=lambda d: (d[0], d[1]),
        )
        gts = {n: [b.tolist() for b, l in zip(t["boxes"], t["labels"]) if l == c] for n, t in enumerate(targets)}
        used = {n: [False] * len(g) for n, g in gts.items()}
        hits = []
        for _, n, box in dets:
            ious = [reference_iou(box, g) for g in gts[n]]
            hit = False
            if ious:
                best = ious.index(max(ious))
                if ious[best] >= iou_threshold and not used[n][best]:
                    used[n][best] = hit = True
            hits.append(hit)
        n_truth = sum(len(g) for g in gts.values())
        precision = [sum(hits[: k + 1]) / (k + 1) for k in range(len(hits))]
        aps.append(sum(max(precision[k:]) for k in range(len(hits)) if hits[k]) / n_truth)
    return sum(aps) / len(aps)


@given(seed=seeds, n_images=st.integers(1, 4), threshold=st.sampled_from([0.3, 0.5, 0.75]))
def test_map_matches_the_reference_and_its_invariances(seed, n_images, threshold):
    rng = np.random.default_rng(seed)
    targets, predictions = [], []
    for _ in range(n_images):
        k = int(rng.integers(0, 4))
        corner = rng.uniform(0, 20, (k, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(2, 10, (k, 2))], axis=1)
        labels = rng.integers(0, 3, k)
        targets.append(truth(boxes, labels))
        # noisy copies of the truth (some twice), plus random false positives
        copies = np.concatenate([boxes, boxes[: k // 2]]) + rng.normal(0, 1.5, (k + k // 2, 4))
        copies[:, 2:] = np.maximum(copies[:, 2:], copies[:, :2])
        extra_corner = rng.uniform(0, 20, (2, 2))
        extra = np.concatenate([extra_corner, extra_corner + 5], axis=1)
        p_labels = np.concatenate([labels, labels[: k // 2], rng.integers(0, 3, 2)])
        p_labels[rng.random(len(p_labels)) < 0.1] = 1  # a few wrong labels
        predictions.append(prediction(np.concatenate([copies, extra]), rng.uniform(0, 1, len(p_labels)), p_labels))
    if not sum(len(t["labels"]) for t in targets):
        with raises(ValueError, "mean_average_precision: the targets hold no boxes"):
            mean_average_precision(predictions, targets)
        return
    value = mean_average_precision(predictions, targets, threshold)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(reference_map(predictions, targets, threshold), rel=1e-12, abs=1e-15)
    # the same boxes in another unit (pixels vs fractions), and the scores through an increasing map
    scaled = [dict(p, boxes=p["boxes"] * 4.0, scores=np.exp(3 * p["scores"])) for p in predictions]
    scaled_targets = [dict(t, boxes=t["boxes"] * 4.0) for t in targets]
    assert mean_average_precision(scaled, scaled_targets, threshold) == pytest.approx(value, rel=1e-12)


def test_map_errors():
    with raises(ValueError, "mean_average_precision: got predictions for 1 images but targets for 2"):
        mean_average_precision([prediction([], [], [])], [truth([A], [0])] * 2)
    with raises(KeyError, "mean_average_precision: the prediction of image 0 lacks ['scores']"):
        mean_average_precision([{"boxes": np.zeros((0, 4)), "labels": []}], [truth([A], [0])])
    with raises(ValueError, "mean_average_precision: expected the scores of image 0 of shape (1,), one per box"):
        mean_average_precision([prediction([A], [0.5, 0.4], [0])], [truth([A], [0])])
    with raises(ValueError, "mean_average_precision: the targets hold no boxes"):
        mean_average_precision([prediction([A], [0.5], [0])], [truth([], [])])
