"""Shapes: a synthetic dataset of circles, squares and triangles, for object detection
and semantic segmentation.

Nothing is downloaded: every image is drawn from a seeded random generator, so the same
seed always gives the same images. A scene is a dark, noisy background with 1 to
``max_objects`` bright shapes of random class, size, colour and position; the shapes lie
wholly inside the image and their bounding boxes do not overlap (no shape hides another).

Drawing works on masks: ``circle_mask``, ``square_mask`` and ``triangle_mask`` say, for
every pixel, whether its centre lies inside the shape (a boolean (size, size) array), and
``random_scene`` paints them. Pixel (row, col) is the unit square [col, col + 1) x
[row, row + 1), with its centre at (col + 0.5, row + 0.5); coordinates are in pixels, x
to the right, y downwards. From a mask, ``mask_box`` reads the shape's bounding box.

    images, boxes, labels = make_shapes_detection(1000, size=64, seed=0)
    images                     (1000, 3, 64, 64) float32 in [0, 1]
    boxes[n], labels[n]        image n's boxes (k, 4) in fractions of the image, labels (k,)

For segmentation (``make_shapes_segmentation``, ``random_segmentation_scene``) the same
masks are painted one over the other, overlaps allowed, and every pixel is labelled with
the class of the shape visible there (0 background, 1 circle, 2 square, 3 triangle):

    images, masks = make_shapes_segmentation(1000, size=32, seed=0)
    images                     (1000, 3, 32, 32) float32 in [0, 1]
    masks                      (1000, 32, 32) int64 in {0, 1, 2, 3}
"""

import numpy as np

from ..nn.checks import integer

CLASS_NAMES = ("circle", "square", "triangle")  # label 0, 1, 2

BACKGROUND = (0.0, 0.3)  # each background channel is drawn uniformly from this range,
SHAPE = (0.55, 1.0)  # each shape colour channel from this one: shapes are brighter
NOISE = 0.05  # then uniform noise in [-NOISE, NOISE] on every pixel, clipped to [0, 1]


def _pixel_centres(size):
    """The pixel centres' coordinates y (size, 1) and x (1, size): row + 0.5, col + 0.5."""
    c = np.arange(size) + 0.5
    return c[:, None], c[None, :]


def circle_mask(size, cx, cy, r):
    """The disc of centre (cx, cy) and radius r: (x - cx)^2 + (y - cy)^2 <= r^2."""
    y, x = _pixel_centres(size)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def square_mask(size, cx, cy, r):
    """The axis-aligned square of centre (cx, cy) and half side r: |x - cx| <= r, |y - cy| <= r."""
    y, x = _pixel_centres(size)
    return (np.abs(x - cx) <= r) & (np.abs(y - cy) <= r)


def triangle_mask(size, cx, cy, r):
    """The upright triangle inside the square of centre (cx, cy) and half side r: apex
    (cx, cy - r), base from (cx - r, cy + r) to (cx + r, cy + r). At height y its half
    width grows from 0 at the apex to r at the base: |x - cx| <= (y - (cy - r)) / 2."""
    y, x = _pixel_centres(size)
    return (y <= cy + r) & (np.abs(x - cx) <= (y - (cy - r)) / 2)


MASKS = (circle_mask, square_mask, triangle_mask)  # indexed by label


def mask_box(mask):
    """The bounding box (x1, y1, x2, y2) of a non-empty mask, in pixels: the smallest box
    that holds every pixel of the mask (x2, y2 are one past the last column and row)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def _overlap(a, b):
    """Do boxes a and b (x1, y1, x2, y2) share any area?"""
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def random_scene(rng, size, max_objects, tries=50):
    """Draw one scene with the generator ``rng``.

    Returns (image (3, size, size) float32 in [0, 1], masks: a list of k boolean
    (size, size) arrays, labels: a list of k ints), 1 <= k <= max_objects. Each shape has
    a half size r uniform in [max(2, 0.08 size), max(2, 0.2 size)] pixels and a centre
    that keeps it inside the image; a shape whose box would overlap an earlier one is
    drawn again (up to ``tries`` times, after which the scene keeps fewer shapes).
    """
    background = rng.uniform(*BACKGROUND, size=3)
    image = np.empty((3, size, size))
    image[...] = background[:, None, None]
    masks, labels, boxes = [], [], []
    k = int(rng.integers(1, max_objects + 1))
    for _ in range(k):
        for _ in range(tries):
            label = int(rng.integers(len(MASKS)))
            r = rng.uniform(max(2.0, 0.08 * size), max(2.0, 0.2 * size))
            cx, cy = rng.uniform(r, size - r, size=2)
            mask = MASKS[label](size, cx, cy, r)
            box = mask_box(mask)
            if not any(_overlap(box, other) for other in boxes):
                break
        else:
            continue  # no free place found: one shape fewer
        image[:, mask] = rng.uniform(*SHAPE, size=3)[:, None]
        masks.append(mask)
        labels.append(label)
        boxes.append(box)
    image += rng.uniform(-NOISE, NOISE, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), masks, labels


def make_shapes_detection(n, size=64, max_objects=3, seed=0, return_masks=False):
    """``n`` synthetic detection images with their boxes and labels, the same for a seed.

    Returns (images, boxes, labels), and with ``return_masks`` (images, boxes, labels,
    masks) for instance segmentation:
    images: (n, 3, size, size) float32 in [0, 1], NCHW;
    boxes:  a list of n float32 arrays (k, 4), each row a shape's tight bounding box
            (x1, y1, x2, y2) in FRACTIONS OF THE IMAGE (pixels / size), ready for
            ``minidl.detection.encode_yolo_targets``;
    labels: a list of n int64 arrays (k,): 0 circle, 1 square, 2 triangle (CLASS_NAMES);
    masks:  a list of n bool arrays (k, size, size), each object's own pixels (the shapes
            do not overlap, so every pixel belongs to one object at most).
    The images are the same with or without the masks. Each image holds 1 to ``max_objects`` shapes (k may be less than drawn when there was
    no room; see ``random_scene``).
    """
    n = integer("make_shapes_detection", "n", n, 0)
    size = integer("make_shapes_detection", "size", size, 8)
    max_objects = integer("make_shapes_detection", "max_objects", max_objects, 1)
    rng = np.random.default_rng(integer("make_shapes_detection", "seed", seed, 0))
    images = np.empty((n, 3, size, size), dtype=np.float32)
    boxes, labels, instance_masks = [], [], []
    for i in range(n):
        images[i], masks, image_labels = random_scene(rng, size, max_objects)
        image_boxes = [mask_box(m) / size for m in masks]
        boxes.append(np.array(image_boxes, dtype=np.float32).reshape(-1, 4))
        labels.append(np.array(image_labels, dtype=np.int64))
        instance_masks.append(np.array(masks, dtype=bool).reshape(-1, size, size))
    if return_masks:
        return images, boxes, labels, instance_masks
    return images, boxes, labels


# --- segmentation ---------------------------------------------------------------------------

SEGMENTATION_CLASSES = ("background",) + CLASS_NAMES  # mask value 0, 1 circle, 2 square, 3 triangle
MAX_SHAPES = 4  # a segmentation scene holds 1 to MAX_SHAPES shapes, which may overlap
MIN_CONTRAST = 0.2  # two shapes of one scene differ by at least this in some colour channel


def _distinct_colour(rng, others, tries=1000):
    """A shape colour (3,) from the range SHAPE that differs from every colour in
    ``others`` by at least MIN_CONTRAST in some channel, so that where two shapes touch
    the edge between them is visible above the noise. (With at most 3 others one always
    exists: no colour is that close to two corners of the cube SHAPE^3 at once.)"""
    for _ in range(tries):
        colour = rng.uniform(*SHAPE, size=3)
        if all(np.max(np.abs(colour - other)) >= MIN_CONTRAST for other in others):
            return colour
    raise RuntimeError(f"_distinct_colour: no colour found at distance {MIN_CONTRAST} from {len(others)} others")


def random_segmentation_scene(rng, size):
    """Draw one segmentation scene with the generator ``rng``.

    Returns (image (3, size, size) float32 in [0, 1], mask (size, size) int64). The scene
    has 1 to MAX_SHAPES shapes of random class, colour, half size r uniform in
    [max(3, 0.1 size), max(3, 0.25 size)] pixels and centre (inside the image). Unlike
    ``random_scene`` the shapes may overlap: each is painted over the earlier ones, in the
    image and in the mask alike, so the mask labels what is visible (a shape wholly
    covered by a later one leaves no trace).
    """
    background = rng.uniform(*BACKGROUND, size=3)
    image = np.empty((3, size, size))
    image[...] = background[:, None, None]
    mask = np.zeros((size, size), dtype=np.int64)
    colours = []
    for _ in range(int(rng.integers(1, MAX_SHAPES + 1))):
        label = int(rng.integers(len(MASKS)))
        r = rng.uniform(max(3.0, 0.1 * size), max(3.0, 0.25 * size))
        cx, cy = rng.uniform(r, size - r, size=2)
        inside = MASKS[label](size, cx, cy, r)
        colour = _distinct_colour(rng, colours)
        image[:, inside] = colour[:, None]  # over whatever was there
        mask[inside] = label + 1  # 0 is the background
        colours.append(colour)
    image += rng.uniform(-NOISE, NOISE, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), mask


def make_shapes_segmentation(n, size=32, seed=0):
    """``n`` synthetic segmentation images with their masks, the same for a seed.

    A synthetic dataset, drawn (not downloaded) from ``numpy.random.default_rng(seed)``:
    each image is a dark, noisy background with 1 to MAX_SHAPES bright circles, squares
    and triangles of random colours and sizes that may overlap (see
    ``random_segmentation_scene``). Returns (images, masks):

    images: (n, 3, size, size) float32 in [0, 1], NCHW;
    masks:  (n, size, size) int64, one class per pixel: 0 background, 1 circle, 2 square,
            3 triangle (SEGMENTATION_CLASSES); where shapes overlap, the one drawn last.

    The images are drawn one after the other, so the first k images of a seed do not
    depend on n. Per-pixel classification with 4 classes: ``nn.SoftmaxCrossEntropy`` on
    logits (n, 4, size, size) and these masks, ``minidl.metrics.mean_iou`` to score.
    """
    n = integer("make_shapes_segmentation", "n", n, 0)
    size = integer("make_shapes_segmentation", "size", size, 8)
    rng = np.random.default_rng(integer("make_shapes_segmentation", "seed", seed, 0))
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.int64)
    for i in range(n):
        images[i], masks[i] = random_segmentation_scene(rng, size)
    return images, masks
