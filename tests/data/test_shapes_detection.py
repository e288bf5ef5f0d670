"""make_shapes_detection: the synthetic shapes are deterministic for a seed, their boxes
enclose them tightly, their labels name them; the mask helpers draw what they say."""

import re

import numpy as np
import pytest

from minidl.data import make_shapes_detection
from minidl.data.shapes import BACKGROUND, NOISE, SHAPE, circle_mask, mask_box, square_mask, triangle_mask
from minidl.detection import box_iou, encode_yolo_targets

# every background channel is <= BACKGROUND[1] + NOISE, every shape channel >= SHAPE[0] - NOISE
BRIGHT = (BACKGROUND[1] + SHAPE[0]) / 2
assert BACKGROUND[1] + NOISE < BRIGHT < SHAPE[0] - NOISE


def shape_pixels(image):
    """The pixels of the shapes: those whose every channel is above BRIGHT."""
    return image.min(axis=0) > BRIGHT


@pytest.fixture(scope="module")
def dataset():
    return make_shapes_detection(200, size=64, max_objects=3, seed=7)


def test_shapes_dtypes_and_ranges(dataset):
    images, boxes, labels = dataset
    assert images.shape == (200, 3, 64, 64) and images.dtype == np.float32 and images.flags.c_contiguous
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert len(boxes) == len(labels) == 200
    for b, l in zip(boxes, labels):
        assert b.dtype == np.float32 and b.ndim == 2 and b.shape[1] == 4
        assert l.dtype == np.int64 and l.shape == (len(b),)
        assert 1 <= len(b) <= 3
        assert set(l.tolist()) <= {0, 1, 2}
        assert (b >= 0).all() and (b <= 1).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    counts = np.bincount(np.concatenate(labels), minlength=3)
    assert counts.min() > 0.25 * counts.sum()  # the three classes, roughly balanced
    assert {len(b) for b in boxes} == {1, 2, 3}


def test_deterministic_for_a_seed():
    a = make_shapes_detection(20, size=32, seed=3)
    b = make_shapes_detection(20, size=32, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    for x, y in zip(a[1] + a[2], b[1] + b[2]):
        np.testing.assert_array_equal(x, y)
    c = make_shapes_detection(20, size=32, seed=4)
    assert not np.array_equal(a[0], c[0])
    # the first images do not depend on how many are asked for
    np.testing.assert_array_equal(make_shapes_detection(5, size=32, seed=3)[0], a[0][:5])


def test_instance_masks_come_with_the_same_images(dataset):
    images, boxes, labels, masks = make_shapes_detection(200, size=64, max_objects=3, seed=7, return_masks=True)
    np.testing.assert_array_equal(images, dataset[0])
    for image, b, l, m, b0, l0 in zip(images, boxes, labels, masks, dataset[1], dataset[2]):
        np.testing.assert_array_equal(b, b0)
        np.testing.assert_array_equal(l, l0)
        assert m.dtype == bool and m.shape == (len(b), 64, 64)
        assert (m.sum(axis=0) <= 1).all()  # one object per pixel at most
        np.testing.assert_array_equal(m.any(axis=0), shape_pixels(image))  # the masks are the bright pixels
        for mask, box in zip(m, b):
            np.testing.assert_array_equal(mask_box(mask) / 64, box)  # each mask has its object's box


def test_boxes_enclose_their_shapes_tightly_and_do_not_overlap(dataset):
    images, boxes, _ = dataset
    for image, b in zip(images, boxes):
        bright = shape_pixels(image)
        inside = np.zeros_like(bright)
        for x1, y1, x2, y2 in np.round(b * 64).astype(int):
            box = bright[y1:y2, x1:x2]
            # tight: the shape touches all four sides of its box
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
            inside[y1:y2, x1:x2] = True
        assert not (bright & ~inside).any(), "a shape pixel outside every box"
        iou = box_iou(b, b)
        assert (iou[~np.eye(len(b), dtype=bool)] == 0).all()


def test_labels_name_the_shapes(dataset):
    # the fraction of its box that a shape fills: 1 for a square, about pi/4 for a circle,
    # about 1/2 for a triangle
    images, boxes, labels = dataset
    fill = {0: [], 1: [], 2: []}
    for image, b, l in zip(images, boxes, labels):
        bright = shape_pixels(image)
        for (x1, y1, x2, y2), label in zip(np.round(b * 64).astype(int), l):
            fill[int(label)].append(bright[y1:y2, x1:x2].mean())
    assert 0.65 < min(fill[0]) and max(fill[0]) < 0.95
    assert min(fill[1]) == 1.0
    assert 0.45 < min(fill[2]) and max(fill[2]) < 0.65


def test_boxes_are_ready_for_yolo_targets(dataset):
    _, boxes, labels = dataset
    target = encode_yolo_targets(boxes, labels, S=7, C=3)
    assert target.shape == (200, 7, 7, 8)
    assert target[..., 4].sum() <= sum(len(b) for b in boxes)


def test_max_objects_and_sizes():
    images, boxes, _ = make_shapes_detection(10, size=16, max_objects=1, seed=0)
    assert images.shape == (10, 3, 16, 16) and all(len(b) == 1 for b in boxes)
    images, boxes, labels = make_shapes_detection(0)
    assert images.shape == (0, 3, 64, 64) and boxes == [] and labels == []


def test_masks():
    size = 40
    circle = circle_mask(size, 20.0, 20.0, 8.0)
    assert circle.dtype == bool and circle.shape == (size, size)
    assert abs(circle.sum() - np.pi * 64) < 0.05 * np.pi * 64
    np.testing.assert_array_equal(circle, circle.T)  # symmetric about its centre
    np.testing.assert_array_equal(circle, circle[::-1])
    square = square_mask(size, 20.0, 20.0, 8.0)
    assert square.sum() == 16 * 16 and mask_box(square).tolist() == [12, 12, 28, 28]
    triangle = triangle_mask(size, 20.0, 20.0, 8.0)
    assert abs(triangle.sum() - 16 * 16 / 2) < 0.1 * 128
    np.testing.assert_array_equal(triangle, triangle[:, ::-1])  # symmetric left-right
    widths = triangle.sum(axis=1)[triangle.any(axis=1)]
    assert (np.diff(widths) >= 0).all()  # widening from the apex down to the base
    for mask in (circle, triangle):
        x1, y1, x2, y2 = mask_box(mask)
        assert 12 <= x1 and 12 <= y1 and x2 <= 28 and y2 <= 28  # inside the square of half side 8
    assert not circle_mask(size, -10.0, -10.0, 3.0).any()  # off the image: an empty mask


@pytest.mark.parametrize(
    "kwargs, err, message",
    [
        (dict(n=-1), ValueError, "make_shapes_detection: n must be at least 0, got -1"),
        (dict(n=2.0), TypeError, "make_shapes_detection: n must be an int, got float"),
        (dict(n=2, size=4), ValueError, "make_shapes_detection: size must be at least 8, got 4"),
        (dict(n=2, max_objects=0), ValueError, "make_shapes_detection: max_objects must be at least 1, got 0"),
    ],
)
def test_errors(kwargs, err, message):
    with pytest.raises(err, match=re.escape(message)):
        make_shapes_detection(**kwargs)
