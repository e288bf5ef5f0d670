"""Anchors, SSD's box coding, matching anchors to objects, sampling regions for a
two-stage head, and mask IoU: each by its own rules."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import detection
from tests.helpers import raises
from tests.strategies import seeds


def random_boxes(rng, k, low=0.02):
    """k boxes inside the unit square with sides of at least ``low``."""
    corner = rng.uniform(0, 0.7, (k, 2))
    size = rng.uniform(low, 0.3, (k, 2))
    return np.concatenate([corner, corner + size], axis=1)


def test_anchors_layout_centres_areas_and_ratios():
    boxes = detection.anchors((2, 3), scales=[0.2, 0.4], aspect_ratios=[1.0, 2.0, 0.5], clip=False)
    assert boxes.shape == (2 * 3 * 6, 4)
    cells = boxes.reshape(6, 2, 3, 4)  # row a H W + i W + j: anchor shape a of cell (i, j)
    centres = (cells[..., :2] + cells[..., 2:]) / 2
    np.testing.assert_allclose(centres[4, 1, 2], [(2 + 0.5) / 3, (1 + 0.5) / 2])  # cell (i=1, j=2)
    w, h = cells[..., 2] - cells[..., 0], cells[..., 3] - cells[..., 1]
    np.testing.assert_allclose((w * h)[:, 0, 0], [0.04] * 3 + [0.16] * 3)  # area s^2 whatever the ratio
    np.testing.assert_allclose((w / h)[:, 0, 0], [1, 2, 0.5] * 2)
    clipped = detection.anchors((2, 3), [0.2, 0.4], [1.0, 2.0, 0.5])
    assert clipped.min() == 0.0 and clipped.max() <= 1.0


@given(seed=seeds, k=st.integers(1, 6))
def test_encode_decode_round_trip(seed, k):
    rng = np.random.default_rng(seed)
    boxes, anchor_boxes = random_boxes(rng, k), random_boxes(rng, k)
    offsets = detection.encode_boxes(boxes, anchor_boxes)
    np.testing.assert_allclose(detection.decode_boxes(offsets, anchor_boxes), boxes, atol=1e-12)
    np.testing.assert_allclose(detection.encode_boxes(anchor_boxes, anchor_boxes), 0.0, atol=1e-12)


def test_encoding_by_hand():
    anchor = np.array([[0.2, 0.2, 0.4, 0.6]])  # centre (0.3, 0.4), 0.2 x 0.4
    box = np.array([[0.25, 0.2, 0.45, 1.0]])  # centre (0.35, 0.6), 0.2 x 0.8
    np.testing.assert_allclose(
        detection.encode_boxes(box, anchor), [[0.05 / (0.2 * 0.1), 0.2 / (0.4 * 0.1), 0.0, np.log(2) / 0.2]]
    )


@given(seed=seeds, gts=st.integers(1, 5), threshold=st.sampled_from([0.3, 0.5, 0.7]))
def test_matching_rules(seed, gts, threshold):
    rng = np.random.default_rng(seed)
    anchor_boxes = detection.anchors(4, [0.2, 0.4], [1.0, 2.0])
    gt = random_boxes(rng, gts)
    matched = detection.match_anchors(anchor_boxes, gt, threshold)
    iou = detection.box_iou(anchor_boxes, gt)
    best_of_gt = iou.argmax(axis=0)
    for g in range(gts):  # rule 2: every object has at least one anchor, its best one unless a later object took it
        owner = matched[best_of_gt[g]]
        assert owner == g or (owner > g and best_of_gt[owner] == best_of_gt[g])
    forced = set(best_of_gt.tolist())
    for a in range(len(anchor_boxes)):
        if a in forced:
            continue
        if iou[a].max() >= threshold:  # rule 1
            assert matched[a] == iou[a].argmax()
        else:
            assert matched[a] == -1


@given(seed=seeds)
def test_sample_rois_keeps_the_fraction_and_the_iou_bands(seed):
    rng = np.random.default_rng(seed)
    gt = random_boxes(rng, 3, low=0.1)
    proposals = np.concatenate([gt + rng.normal(0, 0.01, gt.shape).clip(-0.01, 0.01), random_boxes(rng, 60)])
    proposals = np.sort(proposals.reshape(-1, 2, 2), axis=1).reshape(-1, 4)  # corners in order after the jitter
    indices, matched = detection.sample_rois(proposals, gt, 16, 0.25, 0.5, (0.1, 0.5), rng=np.random.default_rng(seed))
    assert len(set(indices.tolist())) == len(indices) <= 16
    iou = detection.box_iou(proposals[indices], gt).max(axis=1)
    positive = matched >= 0
    assert positive.sum() <= 4 and (iou[positive] >= 0.5).all()
    assert ((iou[~positive] >= 0.1) & (iou[~positive] < 0.5)).all()
    np.testing.assert_array_equal(matched[positive], detection.box_iou(proposals[indices[positive]], gt).argmax(axis=1))


@given(seed=seeds)
def test_mask_iou_of_rectangles_is_their_box_iou(seed):
    rng = np.random.default_rng(seed)
    boxes = np.sort(rng.integers(0, 12, (4, 2, 2)), axis=1).reshape(4, 4)  # rows (x1, y1), (x2, y2)
    masks = np.zeros((4, 12, 12), bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[y1:y2, x1:x2] = True
    expected = detection.box_iou(boxes, boxes)
    np.testing.assert_allclose(detection.mask_iou(masks, masks), expected, atol=1e-12)


def test_errors():
    with raises(ValueError, "encode_boxes: every box and anchor needs a positive width and height"):
        detection.encode_boxes([[0, 0, 0, 1.0]], [[0, 0, 1, 1.0]])
    with raises(ValueError, "encode_boxes: 2 boxes but 1 anchors"):
        detection.encode_boxes([[0, 0, 1, 1.0]] * 2, [[0, 0, 1, 1.0]])
    with raises(ValueError, "anchors: scales must be a finite number in (0, inf), got 0.0"):
        detection.anchors(2, [0.0], [1.0])
    with raises(ValueError, "mask_iou: expected masks (N, H, W) and (M, H, W) of one size"):
        detection.mask_iou(np.zeros((1, 2, 2)), np.zeros((1, 3, 3)))
    assert (detection.match_anchors(detection.anchors(2, [0.5], [1.0]), np.zeros((0, 4))) == -1).all()


@given(seed=seeds)
def test_mask_map_of_rectangles_equals_the_box_map(seed):
    """The mask mAP is the box mAP's rule with mask IoU: on masks that fill their boxes
    (whole pixels) the two agree, image by image, threshold by threshold."""
    rng = np.random.default_rng(seed)

    def image(k, scored):
        boxes = np.sort(rng.integers(0, 16, (k, 2, 2)), axis=1).reshape(k, 4)
        boxes[:, 2:] += 1  # at least one pixel
        masks = np.zeros((k, 16, 16), bool)
        for m, (x1, y1, x2, y2) in zip(masks, boxes):
            m[y1:y2, x1:x2] = True
        d = {"boxes": boxes.astype(float), "masks": masks, "labels": rng.integers(0, 2, k)}
        if scored:
            d["scores"] = rng.random(k)
        return d

    targets = [image(int(rng.integers(1, 4)), False) for _ in range(3)]
    predictions = [image(int(rng.integers(0, 5)), True) for _ in range(3)]
    for threshold in (0.3, 0.5, 0.75):
        boxes = detection.mean_average_precision(predictions, targets, threshold)
        masks = detection.mean_average_precision(predictions, targets, threshold, iou_type="masks")
        assert masks == pytest.approx(boxes, abs=1e-12)
    with raises(ValueError, "iou_type must be one of ('boxes', 'masks'), got 'segm'"):
        detection.mean_average_precision(predictions, targets, iou_type="segm")
