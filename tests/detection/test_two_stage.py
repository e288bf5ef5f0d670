"""SSD's targets and decoding, the two-stage helpers (sliding windows, head targets, the
batch of regions, decoding, masks) and the two detectors' backward against finite
differences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import detection, nn
from minidl.data import make_shapes_detection
from minidl.detectors import FastRCNN, MaskRCNN
from tests.helpers import assert_gradient, raises, randn, random_dy
from tests.strategies import seeds


def shapes(n, seed=1):
    images, boxes, labels, masks = make_shapes_detection(n, size=32, max_objects=3, seed=seed, return_masks=True)
    return images, boxes, labels, masks


def targets(boxes, labels, masks=None):
    keys = [boxes, labels] + ([masks] if masks is not None else [])
    names = ["boxes", "labels", "masks"][: len(keys)]
    return [dict(zip(names, values)) for values in zip(*keys)]


def test_a_perfect_ssd_output_decodes_to_the_ground_truth():
    _, boxes, labels, _ = shapes(6)
    anchor_boxes = detection.anchors(8, [0.2, 0.35], [1.0, 2.0, 0.5])
    target = detection.encode_ssd_targets(boxes, labels, anchor_boxes)
    assert target.shape == (6, 5, len(anchor_boxes))
    assert ((target[:, 4] > 0).sum(axis=1) >= [len(b) for b in boxes]).all()  # every object has an anchor
    pred = np.zeros((6, 4 + 4, len(anchor_boxes)))
    pred[:, :4] = target[:, :4]
    for n in range(6):  # the right class far ahead at every anchor
        pred[n, 4 + target[n, 4].astype(int), np.arange(len(anchor_boxes))] = 20.0
    found = detection.decode_ssd(pred, anchor_boxes)
    assert detection.mean_average_precision(found, targets(boxes, labels), 0.95) == pytest.approx(1.0)
    for d, b in zip(found, boxes):
        assert len(d["boxes"]) == len(b)  # NMS leaves one box per object


def test_nms_per_class_keeps_overlapping_boxes_of_different_classes():
    box = np.array([[0.1, 0.1, 0.5, 0.5]])
    d = {"boxes": np.repeat(box, 3, axis=0), "scores": np.array([0.9, 0.8, 0.7]), "labels": np.array([0, 0, 1])}
    kept = detection.nms_per_class(d, 0.5)
    np.testing.assert_array_equal(kept["scores"], [0.9, 0.7])


def test_sliding_windows_count_size_and_place():
    windows = detection.sliding_windows([12, 18], stride=4, aspect_ratios=(1.0, 4.0), image_size=64)
    counts = [((64 - 12) // 4 + 1) ** 2, ((64 - 24) // 4 + 1) * ((64 - 6) // 4 + 1), ((64 - 18) // 4 + 1) ** 2]
    counts.append(((64 - 36) // 4 + 1) * ((64 - 9) // 4 + 1))
    assert len(windows) == sum(counts)
    assert windows.min() >= 0 and windows.max() <= 1
    w, h = (windows[:, 2] - windows[:, 0]) * 64, (windows[:, 3] - windows[:, 1]) * 64
    np.testing.assert_allclose(sorted(set(np.round(w * h, 6))), [144, 324])


@given(seed=seeds)
def test_fast_rcnn_targets_weights_only_the_true_class_of_positives(seed):
    rng = np.random.default_rng(seed)
    gt = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.8]])
    rois = np.clip(gt[[0, 1, 1]] + rng.uniform(-0.05, 0.05, (3, 4)), 0, 1)
    rois = np.concatenate([rois, [[0.0, 0.0, 0.1, 0.1]]])
    matched = np.array([0, 1, 1, -1])
    labels, offsets, weights = detection.fast_rcnn_targets(rois, matched, gt, np.array([2, 0]), C=3)
    np.testing.assert_array_equal(labels, [3, 1, 1, 0])
    assert weights.sum() == 12 and (weights[3] == 0).all()
    np.testing.assert_array_equal(np.flatnonzero(weights[0]), [12, 13, 14, 15])
    # decoding with those offsets and a certain class gives back the objects
    scores = np.full((4, 4), -20.0)
    scores[np.arange(4), labels] = 20.0
    found = detection.decode_fast_rcnn(scores, offsets, rois, 0.5, 1.0)  # IoU > 1: NMS keeps all
    order = np.argsort(found["rois"])
    np.testing.assert_allclose(found["boxes"][order], gt[[0, 1, 1]], atol=1e-12)
    np.testing.assert_array_equal(found["labels"][order], [2, 0, 0])


def test_head_batch_regions_targets_and_masks():
    images, boxes, labels, masks = shapes(3)
    proposals = detection.sliding_windows([8, 12], 4, image_size=32)
    batch = detection.head_batch(
        proposals, boxes, labels, 3, 32, num_samples=16, masks=masks, m=7, rng=np.random.default_rng(0)
    )
    rois = batch["rois"]
    assert rois.dtype == np.float32 and rois.shape == (48, 5)
    np.testing.assert_array_equal(rois[:, 0], np.repeat([0, 1, 2], 16))
    positive = batch["labels"] > 0
    assert positive.sum() <= 3 * 4  # at most a quarter of 16 per image
    assert batch["mask_targets"].shape == (48, 3, 7, 7)
    weighted = batch["mask_weights"].sum(axis=(2, 3))  # (K, C): m^2 in the true class's channel of a positive
    np.testing.assert_array_equal(weighted.sum(axis=1), np.where(positive, 49, 0))
    np.testing.assert_array_equal(np.argmax(weighted[positive], axis=1), batch["labels"][positive] - 1)
    assert (batch["mask_targets"] <= batch["mask_weights"]).all()  # targets only where they count


def test_mask_targets_and_paste_masks_invert_each_other_on_a_tight_box():
    _, boxes, _, masks = shapes(5, seed=4)
    for b, m in zip(boxes, masks):
        target = detection.mask_targets(m.astype(float), b, 28)
        pasted = detection.paste_masks(target, b, 32)
        assert (detection.mask_iou(pasted, m).diagonal() >= 0.85).all()
    full = detection.paste_masks(np.ones((1, 3, 3)), np.array([[0.25, 0.5, 0.75, 1.0]]), 8)[0]
    expected = np.zeros((8, 8), dtype=bool)
    expected[4:8, 2:6] = True  # pixels whose centres lie in the box
    np.testing.assert_array_equal(full, expected)


def test_as_rois_and_errors():
    rois = detection.as_rois([np.array([[0.0, 0.0, 0.5, 0.5]]), np.zeros((0, 4)), np.array([[0.5, 0.5, 1, 1]])], 10)
    np.testing.assert_array_equal(rois, [[0, 0, 0, 5, 5], [2, 5, 5, 10, 10]])
    with raises(ValueError, "encode_ssd_targets", "2 images of boxes but 1"):
        detection.encode_ssd_targets([np.zeros((0, 4))] * 2, [np.zeros(0, int)], detection.anchors(2, [0.5], [1]))
    with raises(ValueError, "decode_ssd", "(N, 4 + K, A)"):
        detection.decode_ssd(np.zeros((1, 6, 3)), detection.anchors(1, [0.5], [1.0]))
    with raises(ValueError, "paste_masks", "(k, m, m)"):
        detection.paste_masks(np.zeros((2, 3, 3)), np.zeros((1, 4)), 8)


def tiny(kind):
    """A float64 FastRCNN or MaskRCNN small enough for finite differences."""
    backbone = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh())
    roi = nn.RoIAlign(2, 0.5, sampling_ratio=2, aligned=True)
    head = nn.Sequential(nn.Flatten(), nn.Linear(8, 3), nn.Tanh())
    if kind is FastRCNN:
        model = FastRCNN(backbone, roi, head, 3, num_classes=2)
    else:
        model = MaskRCNN(backbone, roi, head, nn.Sequential(nn.Conv2d(2, 2, 1)), 3, num_classes=2)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


@pytest.mark.parametrize("kind", [FastRCNN, MaskRCNN])
def test_detector_backward_matches_central_differences(kind):
    model = tiny(kind)
    x = randn(2, 1, 6, 6, seed=1)
    rois = np.array([[0, 1.0, 0.5, 9.0, 7.0], [1, 2.5, 3.0, 11.0, 10.5], [0, 4.0, 4.0, 8.0, 11.0]])
    outputs = model(x, rois)
    dys = [random_dy(y.shape, seed=k) for k, y in enumerate(outputs)]

    def total(v):
        return sum(float(np.sum(y * dy)) for y, dy in zip(model(v, rois), dys))

    model.zero_grad()
    model(x, rois)
    dx = model.backward(*dys)
    weight = model.backbone[0].weight
    assert_gradient(dx, total, x)
    assert_gradient(weight.grad.copy(), lambda w: total(x), weight.data, name="backbone weight")
    assert len(outputs) == (2 if kind is FastRCNN else 3)


@given(n=st.integers(1, 3))
def test_detector_outputs_have_the_documented_shapes(n):
    model = tiny(MaskRCNN)
    rois = np.array([[k % n, 0.0, 0.0, 6.0, 6.0] for k in range(4)])
    scores, offsets, masks = model(randn(n, 1, 6, 6), rois)
    assert scores.shape == (4, 3) and offsets.shape == (4, 12) and masks.shape == (4, 2, 2, 2)


@pytest.mark.parametrize("threshold", [0.0, 1.0])  # every region detected, or none
def test_detect_gives_clipped_boxes_and_pasted_masks(threshold):
    model = tiny(MaskRCNN)
    x = randn(3, 1, 6, 6, seed=2)
    proposals = np.array([[0.0, 0.0, 0.5, 0.5], [0.3, 0.2, 1.0, 0.9]])
    found = model.detect(x, proposals, conf_threshold=threshold, nms_threshold=1.0, batch_size=2)
    assert len(found) == 3 and not model.training
    for d in found:
        k = 2 * 2 if threshold == 0.0 else 0  # 2 regions x 2 classes above 0, none above 1
        assert d["boxes"].shape == (k, 4) and d["masks"].shape == (k, 6, 6) and d["masks"].dtype == bool
        assert d["boxes"].min(initial=0) >= 0 and d["boxes"].max(initial=1) <= 1
        if k:
            box = d["boxes"][0] * 6
            outside = np.ones((6, 6), bool)
            outside[
                int(np.ceil(box[1] - 0.5)) : int(np.ceil(box[3] - 0.5)),
                int(np.ceil(box[0] - 0.5)) : int(np.ceil(box[2] - 0.5)),
            ] = False
            assert not d["masks"][0][outside].any()  # a mask stays inside its box
