"""make_shapes_segmentation: shapes and dtypes, determinism, every class appears, and the
masks match the images: background and shapes are told apart by brightness alone, every
boundary between two classes is a visible edge, and a shape standing alone has the
geometry of its class."""

import re

import numpy as np
import pytest
from scipy import ndimage

from minidl.data import make_shapes_segmentation
from minidl.data.shapes import BACKGROUND, MIN_CONTRAST, NOISE, SEGMENTATION_CLASSES, SHAPE

EPS = 1e-6  # float32 rounding of the images


@pytest.fixture(scope="module")
def data():
    return make_shapes_segmentation(200, size=32, seed=0)


def test_shapes_dtypes_and_ranges(data):
    images, masks = data
    assert images.shape == (200, 3, 32, 32) and images.dtype == np.float32
    assert masks.shape == (200, 32, 32) and masks.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) <= {0, 1, 2, 3}
    assert SEGMENTATION_CLASSES == ("background", "circle", "square", "triangle")
    x, y = make_shapes_segmentation(3, size=20, seed=1)
    assert x.shape == (3, 3, 20, 20) and y.shape == (3, 20, 20)
    x, y = make_shapes_segmentation(0)
    assert x.shape == (0, 3, 32, 32) and y.shape == (0, 32, 32)


def test_every_class_appears_and_every_image_has_a_shape(data):
    _, masks = data
    assert all(masks[i].any() for i in range(len(masks)))
    counts = np.bincount(make_shapes_segmentation(10, seed=0)[1].reshape(-1), minlength=4)
    assert np.all(counts > 0), counts  # all four classes within 10 images
    per_image = [set(np.unique(m)) for m in masks]
    assert sum(len(s) >= 3 for s in per_image) > 20  # images often hold several classes


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = make_shapes_segmentation(6, seed=3)
    b = make_shapes_segmentation(6, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = make_shapes_segmentation(6, seed=4)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    first = make_shapes_segmentation(2, seed=3)  # the first images do not depend on n
    np.testing.assert_array_equal(first[0], a[0][:2])
    np.testing.assert_array_equal(first[1], a[1][:2])


def test_background_and_shapes_are_separated_by_brightness(data):
    """Background channels lie in BACKGROUND, shape channels in SHAPE, plus at most NOISE:
    every background pixel is darker than every shape pixel, in every channel."""
    images, masks = data
    darkest, brightest = images.min(axis=1), images.max(axis=1)  # over the channels
    assert brightest[masks == 0].max() <= BACKGROUND[1] + NOISE + EPS
    assert darkest[masks > 0].min() >= SHAPE[0] - NOISE - EPS
    assert BACKGROUND[1] + NOISE < SHAPE[0] - NOISE  # the two ranges do not meet
    # and the mean colour of every class stands apart from the background's
    mean_colour = [images.transpose(1, 0, 2, 3)[:, masks == k].mean(axis=1) for k in range(4)]
    assert all(np.all(mean_colour[k] > mean_colour[0] + 0.3) for k in (1, 2, 3))


def test_a_boundary_between_two_classes_is_a_visible_edge(data):
    """Where two pixels side by side carry different shape classes, they belong to two
    shapes whose colours differ by MIN_CONTRAST in some channel: after noise, by at least
    MIN_CONTRAST - 2 NOISE."""
    images, masks = data
    for axis in (1, 2):  # vertical and horizontal neighbours
        a = np.take(masks, np.arange(31), axis=axis)
        b = np.take(masks, np.arange(1, 32), axis=axis)
        jump = np.abs(
            np.take(images, np.arange(31), axis=axis + 1) - np.take(images, np.arange(1, 32), axis=axis + 1)
        ).max(axis=1)
        boundary = (a > 0) & (b > 0) & (a != b)
        assert boundary.sum() > 50  # shapes of different classes do touch
        assert jump[boundary].min() >= MIN_CONTRAST - 2 * NOISE - EPS


def lone_shapes(images, masks):
    """``(label, mask)`` for images whose visible foreground is one shape, untouched by
    others: one connected region, one class, one colour (all channels within 2 NOISE;
    two shapes would differ by MIN_CONTRAST)."""
    found = []
    for image, mask in zip(images, masks):
        _, n_regions = ndimage.label(mask > 0)
        labels = np.unique(mask[mask > 0])
        pixels = image[:, mask > 0]
        if n_regions == 1 and len(labels) == 1 and np.ptp(pixels, axis=1).max() <= 2 * NOISE + EPS:
            found.append((int(labels[0]), mask > 0))
    return found


def classify_by_geometry(region):
    """Name a lone shape from its mask alone. Inside its bounding box a square fills every
    pixel; a triangle (apex up) has about a third of the mass of its lower half in its
    upper half; a circle is as heavy above as below and does not fill its box."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    box = region[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    half = box.shape[0] // 2
    top_over_bottom = box[:half].sum() / box[box.shape[0] - half :].sum()
    if box.all():
        return "square"
    return "triangle" if top_over_bottom < 0.57 else "circle"


def test_a_lone_shape_has_the_geometry_of_its_class(data):
    shapes = lone_shapes(*data)
    labels = [label for label, _ in shapes]
    assert all(labels.count(k) >= 10 for k in (1, 2, 3)), labels  # each class is tested
    for label, region in shapes:
        assert classify_by_geometry(region) == SEGMENTATION_CLASSES[label]


@pytest.mark.parametrize(
    "kwargs, err, message",
    [
        ({"n": -1}, ValueError, "make_shapes_segmentation: n must be at least 0, got -1"),
        ({"n": 2.0}, TypeError, "make_shapes_segmentation: n must be an int, got float"),
        ({"n": 2, "size": 4}, ValueError, "make_shapes_segmentation: size must be at least 8, got 4"),
        ({"n": 2, "size": True}, TypeError, "make_shapes_segmentation: size must be an int, got bool"),
    ],
)
def test_bad_arguments(kwargs, err, message):
    with pytest.raises(err, match=re.escape(message)):
        make_shapes_segmentation(**kwargs)


def test_the_smallest_size_works():
    images, masks = make_shapes_segmentation(5, size=8, seed=0)
    assert images.shape == (5, 3, 8, 8) and all(m.any() for m in masks)
