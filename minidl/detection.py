"""Object detection utilities: IoU, non-maximum suppression, YOLO decoding and
encoding, and the mean average precision.

Boxes are rows (x1, y1, x2, y2): the top-left and the bottom-right corner, x to the right
and y downwards, x1 <= x2 and y1 <= y2. minidl's YOLO code measures them in fractions of
the image (0 .. 1); IoU, NMS and mAP do not care about the unit.

    IoU(A, B) = area(A & B) / area(A | B),    area(A | B) = area(A) + area(B) - area(A & B)

A detector's output for one image, and the ground truth, are dicts of arrays:

    {"boxes": (k, 4), "scores": (k,), "labels": (k,) int}      a prediction
    {"boxes": (k, 4), "labels": (k,) int}                      a target

The path from a YOLO network's output to a score (tutorial 10):

    detections = decode_yolo(pred, S, B, C, conf_threshold=0.1)       # every box above 0.1
    for d in detections:                                               # one image at a time
        keep = nms(d["boxes"], d["scores"], iou_threshold=0.5)
        ... d["boxes"][keep], d["scores"][keep], d["labels"][keep]
    mean_average_precision(kept_detections, targets, iou_threshold=0.5)
"""

import numpy as np
from numba import njit

from .nn.checks import positive_int, real_number
from .ops.roi_align import forward as roi_align
from .ops.softmax_cross_entropy import softmax
from .ops.yolo_loss import iou_xyxy  # the one IoU of minidl: the loss picks its boxes with it

# --- checks ----------------------------------------------------------------------------------


def _boxes(where, boxes, what="boxes"):
    """``boxes`` as a C-contiguous float64 (k, 4) array of valid corners (an empty list or
    array is (0, 4))."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{where}: expected {what} of shape (k, 4), rows (x1, y1, x2, y2), got shape {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError(f"{where}: {what} hold NaN or inf")
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: {what} must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, got {b[k].tolist()} in row {k}"
        )
    return np.ascontiguousarray(b)


def _vector(where, values, k, what, integer=False):
    """``values`` as a (k,) array: int64 labels or float64 scores."""
    v = np.asarray(values)
    if v.size == 0:
        v = v.reshape(0)
    if v.shape != (k,):
        raise ValueError(f"{where}: expected {what} of shape ({k},), one per box, got shape {v.shape}")
    if integer:
        if v.size and not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{where}: {what} must be integers, got dtype {v.dtype}")
        return v.astype(np.int64)
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"{where}: {what} hold NaN or inf")
    return v


def _grid(where, S, B, C):
    for value, what in ((S, "S"), (B, "B"), (C, "C")):
        positive_int(where, what, value)


# --- IoU and NMS -----------------------------------------------------------------------------


@njit(cache=True)
def box_iou_kernel(boxes1, boxes2):
    """iou[a, b] = IoU(boxes1[a], boxes2[b]); boxes1 (N, 4), boxes2 (M, 4) float64."""
    N, M = boxes1.shape[0], boxes2.shape[0]
    iou = np.zeros((N, M), dtype=np.float64)
    for a in range(N):
        for b in range(M):
            iou[a, b] = iou_xyxy(
                boxes1[a, 0],
                boxes1[a, 1],
                boxes1[a, 2],
                boxes1[a, 3],
                boxes2[b, 0],
                boxes2[b, 1],
                boxes2[b, 2],
                boxes2[b, 3],
            )
    return iou


def box_iou(boxes1, boxes2):
    """The IoU of every pair: boxes1 (N, 4), boxes2 (M, 4) -> (N, M) float64.

    iou[a, b] = area(boxes1[a] & boxes2[b]) / area(boxes1[a] | boxes2[b]); 0 when the union
    is empty (two boxes of zero area), and 0 for boxes that do not overlap (or only touch).
    """
    return box_iou_kernel(_boxes("box_iou", boxes1, "boxes1"), _boxes("box_iou", boxes2, "boxes2"))


def nms(boxes, scores, iou_threshold):
    """Non-maximum suppression: the indices of the boxes kept, by descending score (int64).

    The greedy algorithm, with torchvision's semantics (``torchvision.ops.nms``):

        1. sort the boxes by descending score (equal scores keep their order);
        2. take the first box still in the list and keep it;
        3. drop from the list every later box whose IoU with it is > iou_threshold;
        4. repeat 2-3 until the list is empty.

    So a box survives when its IoU with every kept box of higher score is <= iou_threshold.
    NMS ignores labels: run it once per class to keep overlapping objects of different
    classes. boxes (k, 4), scores (k,).
    """
    boxes = _boxes("nms", boxes)
    scores = _vector("nms", scores, boxes.shape[0], "scores")
    iou_threshold = real_number("nms", "iou_threshold", iou_threshold, 0.0, 1.0)
    order = np.argsort(-scores, kind="stable")
    iou = box_iou_kernel(boxes, boxes)
    dropped = np.zeros(boxes.shape[0], dtype=bool)
    keep = []
    for position, a in enumerate(order):
        if dropped[a]:
            continue
        keep.append(a)
        for b in order[position + 1 :]:
            if iou[a, b] > iou_threshold:
                dropped[b] = True
    return np.array(keep, dtype=np.int64)


def nms_per_class(detections, iou_threshold=0.5):
    """One image's detections {"boxes", "scores", "labels"} after ``nms`` run separately
    for every class (so that overlapping objects of different classes both stay), in their
    original order."""
    labels = _vector("nms_per_class", detections["labels"], len(detections["scores"]), "labels", integer=True)
    keep = []
    for c in np.unique(labels):
        of_c = np.flatnonzero(labels == c)
        keep.extend(of_c[nms(detections["boxes"][of_c], detections["scores"][of_c], iou_threshold)])
    keep = np.array(sorted(keep), dtype=np.int64)
    return {key: np.asarray(value)[keep] for key, value in detections.items()}


# --- anchors, box coding, matching (SSD, Faster R-CNN) -----------------------------------------


def anchors(feature_size, scales, aspect_ratios, clip=True):
    """SSD's default boxes (Faster R-CNN's anchors) of one feature map, in fractions of the
    image: (H W A, 4) rows (x1, y1, x2, y2), A = len(scales) len(aspect_ratios).

    Cell (i, j) of an H x W map is centred at ((j + 1/2) / W, (i + 1/2) / H); for each scale
    s (a fraction of the image) and aspect ratio r (width / height) it has the box of width
    s sqrt(r) and height s / sqrt(r) (area s^2 whatever r). Anchor shapes a go scale by
    scale, ratio by ratio, and anchor a of cell (i, j) is row a H W + i W + j: the order of
    a convolutional head's output (N, V A, H, W) read as (N, V, A H W), V values per anchor
    (the SSD of tutorial 15). With ``clip`` the boxes are cut to the image [0, 1]^2.
    """
    H, W = (feature_size, feature_size) if isinstance(feature_size, (int, np.integer)) else feature_size
    positive_int("anchors", "feature_size", H)
    positive_int("anchors", "feature_size", W)
    scales = [real_number("anchors", "scales", s, 0.0, low_open=True) for s in np.atleast_1d(scales).tolist()]
    ratios = [
        real_number("anchors", "aspect_ratios", r, 0.0, low_open=True) for r in np.atleast_1d(aspect_ratios).tolist()
    ]
    shapes = [(s * np.sqrt(r), s / np.sqrt(r)) for s in scales for r in ratios]
    boxes = np.empty((len(shapes), H, W, 4))
    for a, (w, h) in enumerate(shapes):
        for i in range(H):
            for j in range(W):
                cx, cy = (j + 0.5) / W, (i + 0.5) / H
                boxes[a, i, j] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    boxes = boxes.reshape(-1, 4)
    return np.clip(boxes, 0.0, 1.0) if clip else boxes


VARIANCES = (0.1, 0.2)


def encode_boxes(boxes, anchor_boxes, variances=VARIANCES):
    """SSD's centre-size offsets of ``boxes`` from their anchors, row by row: (k, 4) each.

        tx = (cx - cx_a) / (w_a v0),   ty = (cy - cy_a) / (h_a v0)
        tw = log(w / w_a) / v1,        th = log(h / h_a) / v1

    (centres and sizes of the box and of its anchor; v = ``variances``, (0.1, 0.2) as in
    SSD, scale the offsets to about unit size, so that a smooth-L1 loss sees each of the
    four on the same footing). Boxes and anchors need a positive width and height.
    """
    boxes, anchor_boxes = _boxes("encode_boxes", boxes), _boxes("encode_boxes", anchor_boxes, "anchor_boxes")
    if boxes.shape != anchor_boxes.shape:
        raise ValueError(
            f"encode_boxes: {boxes.shape[0]} boxes but {anchor_boxes.shape[0]} anchors; one anchor per box"
        )
    (cx, cy, w, h), (acx, acy, aw, ah) = _centre_size(boxes), _centre_size(anchor_boxes)
    if (w <= 0).any() or (h <= 0).any() or (aw <= 0).any() or (ah <= 0).any():
        raise ValueError("encode_boxes: every box and anchor needs a positive width and height (log(w / w_a))")
    v0, v1 = variances
    return np.stack([(cx - acx) / (aw * v0), (cy - acy) / (ah * v0), np.log(w / aw) / v1, np.log(h / ah) / v1], axis=1)


def decode_boxes(offsets, anchor_boxes, variances=VARIANCES):
    """The inverse of ``encode_boxes``: boxes (k, 4) rows (x1, y1, x2, y2) from offsets (k, 4)
    and their anchors: cx = cx_a + tx w_a v0, w = w_a exp(tw v1), and alike for y and h."""
    offsets = np.asarray(offsets, dtype=np.float64)
    anchor_boxes = _boxes("decode_boxes", anchor_boxes, "anchor_boxes")
    if offsets.shape != anchor_boxes.shape:
        raise ValueError(f"decode_boxes: offsets of shape {offsets.shape} for anchors of shape {anchor_boxes.shape}")
    if not np.isfinite(offsets).all():
        raise ValueError("decode_boxes: offsets hold NaN or inf")
    acx, acy, aw, ah = _centre_size(anchor_boxes)
    v0, v1 = variances
    cx, cy = acx + offsets[:, 0] * aw * v0, acy + offsets[:, 1] * ah * v0
    w, h = aw * np.exp(offsets[:, 2] * v1), ah * np.exp(offsets[:, 3] * v1)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _centre_size(boxes):
    """(cx, cy, w, h) of (k, 4) corner boxes, each (k,)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h


def match_anchors(anchor_boxes, gt_boxes, iou_threshold=0.5):
    """Which ground-truth box each anchor is responsible for: (A,) int64, -1 for background.

    SSD's two rules: (1) an anchor takes the ground truth it overlaps most if that IoU is
    >= ``iou_threshold``; (2) every ground-truth box takes its best anchor in any case, even
    below the threshold, so that no object goes unlearned (its IoU with every anchor may be
    small). Rule 2 wins where the two disagree; ties go to the lower index.
    """
    anchor_boxes = _boxes("match_anchors", anchor_boxes, "anchor_boxes")
    gt_boxes = _boxes("match_anchors", gt_boxes, "gt_boxes")
    iou_threshold = real_number("match_anchors", "iou_threshold", iou_threshold, 0.0, 1.0)
    matched = np.full(anchor_boxes.shape[0], -1, dtype=np.int64)
    if gt_boxes.shape[0] == 0 or anchor_boxes.shape[0] == 0:
        return matched
    iou = box_iou_kernel(anchor_boxes, gt_boxes)  # (A, G)
    best_gt = iou.argmax(axis=1)
    above = iou[np.arange(len(best_gt)), best_gt] >= iou_threshold
    matched[above] = best_gt[above]
    for g in range(gt_boxes.shape[0]):  # rule 2, in order: a later box may take an anchor back
        matched[iou[:, g].argmax()] = g
    return matched


def sample_rois(proposals, gt_boxes, num_samples, positive_fraction=0.25, fg_iou=0.5, bg_iou=(0.0, 0.5), rng=None):
    """Fast R-CNN's mini-batch of regions for training the head: ``(indices, matched)``.

    A proposal whose best IoU with a ground-truth box is >= ``fg_iou`` is a positive (its
    ``matched`` box is the one it overlaps most); one with a best IoU in [bg_iou[0],
    bg_iou[1]) a negative (matched -1, background). At most ``positive_fraction`` of the
    ``num_samples`` are positives, drawn at random; negatives fill the rest (fewer when
    there are not enough). ``rng``: a numpy Generator (minidl's global one when None).
    """
    proposals = _boxes("sample_rois", proposals, "proposals")
    gt_boxes = _boxes("sample_rois", gt_boxes, "gt_boxes")
    num_samples = positive_int("sample_rois", "num_samples", num_samples)
    positive_fraction = real_number("sample_rois", "positive_fraction", positive_fraction, 0.0, 1.0)
    fg_iou = real_number("sample_rois", "fg_iou", fg_iou, 0.0, 1.0)
    low, high = (real_number("sample_rois", "bg_iou", v, 0.0, 1.0) for v in bg_iou)
    if rng is None:
        from .rng import get_rng

        rng = get_rng()
    if gt_boxes.shape[0]:
        iou = box_iou_kernel(proposals, gt_boxes)
        best_gt, best = iou.argmax(axis=1), iou.max(axis=1)
    else:
        best_gt, best = np.zeros(proposals.shape[0], np.int64), np.zeros(proposals.shape[0])
    positives = np.flatnonzero(best >= fg_iou)
    negatives = np.flatnonzero((best >= low) & (best < high))
    n_pos = min(len(positives), int(round(num_samples * positive_fraction)))
    n_neg = min(len(negatives), num_samples - n_pos)
    chosen_pos = rng.choice(positives, n_pos, replace=False)
    chosen_neg = rng.choice(negatives, n_neg, replace=False)
    indices = np.concatenate([chosen_pos, chosen_neg]).astype(np.int64)
    matched = np.concatenate([best_gt[chosen_pos], np.full(n_neg, -1)]).astype(np.int64)
    return indices, matched


# --- SSD targets and outputs ------------------------------------------------------------------


def encode_ssd_targets(boxes, labels, anchor_boxes, iou_threshold=0.5, dtype=np.float32):
    """SSD targets (N, 5, A) for ``nn.MultiBoxLoss`` from per-image boxes and labels.

    For image n, ``match_anchors`` gives each anchor its object (or none); a matched anchor
    a gets target[n, :4, a] = ``encode_boxes`` (its object's box, the anchor) and
    target[n, 4, a] = label + 1; an unmatched one the label 0 (background) and offsets 0
    (unused: background anchors have no box loss). boxes: N arrays (k, 4) in fractions of
    the image; labels: N integer arrays (k,) in [0, C).
    """
    anchor_boxes = _boxes("encode_ssd_targets", anchor_boxes, "anchor_boxes")
    if len(boxes) != len(labels):
        raise ValueError(f"encode_ssd_targets: {len(boxes)} images of boxes but {len(labels)} of labels")
    target = np.zeros((len(boxes), 5, anchor_boxes.shape[0]), dtype=dtype)
    for n, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        image_boxes = _boxes("encode_ssd_targets", image_boxes)
        image_labels = _vector("encode_ssd_targets", image_labels, image_boxes.shape[0], "labels", integer=True)
        if (image_labels < 0).any():
            raise ValueError(
                f"encode_ssd_targets: labels must be >= 0 (0 is the first class), image {n} has {image_labels}"
            )
        matched = match_anchors(anchor_boxes, image_boxes, iou_threshold)
        positive = np.flatnonzero(matched >= 0)
        target[n, :4, positive] = encode_boxes(image_boxes[matched[positive]], anchor_boxes[positive])
        target[n, 4, positive] = image_labels[matched[positive]] + 1
    return target


def _class_probabilities(where, scores):
    """Softmax over axis 1 of finite class scores (N, K, ...)."""
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"{where}: the class scores hold NaN or inf")
    return softmax(scores)


def decode_ssd(pred, anchor_boxes, conf_threshold=0.01, nms_threshold=0.45):
    """An SSD output (N, 4 + K, A) as detections, one dict per image.

    Every anchor's class scores go through the softmax; for each class c >= 1 (not the
    background) the anchors whose probability p_c exceeds ``conf_threshold`` give the box
    ``decode_boxes``(offsets, anchor) with score p_c and label c - 1 (the dataset's class),
    then ``nms_per_class`` at ``nms_threshold`` removes the duplicates.
    """
    anchor_boxes = _boxes("decode_ssd", anchor_boxes, "anchor_boxes")
    conf_threshold = real_number("decode_ssd", "conf_threshold", conf_threshold, finite=False)
    nms_threshold = real_number("decode_ssd", "nms_threshold", nms_threshold, 0.0, 1.0)
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] < 6 or p.shape[2] != anchor_boxes.shape[0]:
        raise ValueError(
            f"decode_ssd: expected pred of shape (N, 4 + K, A) with A = {anchor_boxes.shape[0]} anchors, got {p.shape}"
        )
    probs = _class_probabilities("decode_ssd", p[:, 4:])
    detections = []
    for n in range(p.shape[0]):
        boxes = decode_boxes(p[n, :4].T, anchor_boxes)
        c, a = np.nonzero(probs[n, 1:] > conf_threshold)  # class c + 1 of anchor a
        found = {"boxes": boxes[a], "scores": probs[n, c + 1, a], "labels": c.astype(np.int64)}
        detections.append(nms_per_class(found, nms_threshold))
    return detections


# --- two-stage detectors: proposals, head targets, masks ------------------------------------------


def sliding_windows(sizes, stride, aspect_ratios=(1.0,), image_size=1.0):
    """Region proposals from sliding windows (the simple stand-in for R-CNN's selective
    search): for every size s and aspect ratio r (width / height), the window of width
    s sqrt(r) and height s / sqrt(r) at every ``stride`` that fits inside the
    image_size x image_size image, as (k, 4) rows (x1, y1, x2, y2) in fractions of the
    image (sizes and stride are in image_size units: pixels when it is the image's size).
    """
    image_size = real_number("sliding_windows", "image_size", image_size, 0.0, low_open=True)
    stride = real_number("sliding_windows", "stride", stride, 0.0, low_open=True)
    sizes = [real_number("sliding_windows", "sizes", v, 0.0, low_open=True) for v in np.atleast_1d(sizes).tolist()]
    ratios = [
        real_number("sliding_windows", "aspect_ratios", v, 0.0, low_open=True)
        for v in np.atleast_1d(aspect_ratios).tolist()
    ]
    windows = []
    for size in sizes:
        for ratio in ratios:
            w, h = size * np.sqrt(ratio), size / np.sqrt(ratio)
            for y in np.arange(0.0, image_size - h + 1e-9, stride):
                for x in np.arange(0.0, image_size - w + 1e-9, stride):
                    windows.append((x, y, x + w, y + h))
    return np.array(windows, dtype=np.float64).reshape(-1, 4) / image_size


def fast_rcnn_targets(rois, matched, gt_boxes, gt_labels, C, variances=VARIANCES):
    """The targets of a Fast R-CNN head for regions ``rois`` (k, 4) matched to objects
    (``matched`` (k,), -1 background, as ``sample_rois`` returns it):

        labels  (k,) int64       label + 1 of the matched object, 0 for the background
        offsets (k, 4 (C + 1))   in the 4 columns of its class (4 (label + 1) ...), the
                                 ``encode_boxes`` offsets of the object from the region
        weights (k, 4 (C + 1))   1 in those 4 columns of the positives, 0 elsewhere: the box
                                 loss counts only the offsets of the true class.
    """
    rois = _boxes("fast_rcnn_targets", rois, "rois")
    gt_boxes = _boxes("fast_rcnn_targets", gt_boxes, "gt_boxes")
    matched = _vector("fast_rcnn_targets", matched, rois.shape[0], "matched", integer=True)
    gt_labels = _vector("fast_rcnn_targets", gt_labels, gt_boxes.shape[0], "gt_labels", integer=True)
    C = positive_int("fast_rcnn_targets", "C", C)
    labels = np.zeros(rois.shape[0], dtype=np.int64)
    offsets = np.zeros((rois.shape[0], 4 * (C + 1)))
    weights = np.zeros_like(offsets)
    for k in np.flatnonzero(matched >= 0):
        c = gt_labels[matched[k]] + 1
        labels[k] = c
        offsets[k, 4 * c : 4 * c + 4] = encode_boxes(gt_boxes[matched[k]][None], rois[k][None], variances)[0]
        weights[k, 4 * c : 4 * c + 4] = 1.0
    return labels, offsets, weights


def as_rois(boxes, image_size):
    """The (K, 5) rows (n, x1, y1, x2, y2) that ``nn.RoIPool``/``nn.RoIAlign`` take, from
    a list of per-image boxes (k_n, 4) in fractions of the image: n is the image's index
    in the list and the corners are scaled to pixels of an image_size x image_size image.
    float32."""
    rows = [np.zeros((0, 5))]
    for n, image_boxes in enumerate(boxes):
        image_boxes = _boxes("as_rois", image_boxes)
        rows.append(np.concatenate([np.full((len(image_boxes), 1), n), image_boxes * image_size], axis=1))
    return np.concatenate(rows).astype(np.float32)


def head_batch(
    proposals, boxes, labels, C, image_size, num_samples=32, positive_fraction=0.25, masks=None, m=14, rng=None
):
    """The regions and targets of one training batch of a two-stage head (Fast R-CNN's
    recipe): for each image, its ground-truth boxes join the proposals (so that every
    object has a perfect positive), ``sample_rois`` picks ``num_samples`` regions with at
    most ``positive_fraction`` positives, and ``fast_rcnn_targets`` gives their targets.

    proposals (P, 4) shared by every image, boxes/labels per image (fractions of the
    image, classes 0 .. C-1). Returns a dict: "rois" (K, 5) in pixels (``as_rois``),
    "labels" (K,), "offsets" and "weights" (K, 4 (C + 1)). With ``masks`` (per image,
    (k, size, size) bool) also "mask_targets" (K, C, m, m), the ``mask_targets`` of each
    positive in the channel of its class, and "mask_weights", 1 there and 0 elsewhere: a
    Mask R-CNN's mask loss counts only the true class's mask of the positives.
    """
    regions, parts = [], {"labels": [], "offsets": [], "weights": [], "mask_targets": [], "mask_weights": []}
    for n, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        candidates = np.concatenate([_boxes("head_batch", image_boxes), _boxes("head_batch", proposals, "proposals")])
        chosen, matched = sample_rois(candidates, image_boxes, num_samples, positive_fraction, rng=rng)
        regions.append(candidates[chosen])
        for key, value in zip(
            ("labels", "offsets", "weights"), fast_rcnn_targets(regions[-1], matched, image_boxes, image_labels, C)
        ):
            parts[key].append(value)
        if masks is not None:
            target, weight = np.zeros((len(chosen), C, m, m)), np.zeros((len(chosen), C, m, m))
            positive = np.flatnonzero(matched >= 0)
            classes = np.asarray(image_labels)[matched[positive]]
            target[positive, classes] = mask_targets(masks[n][matched[positive]], regions[-1][positive], m)
            weight[positive, classes] = 1.0
            parts["mask_targets"].append(target)
            parts["mask_weights"].append(weight)
    batch = {"rois": as_rois(regions, image_size)}
    for key, value in parts.items():
        if value:
            batch[key] = np.concatenate(value) if key == "labels" else np.concatenate(value).astype(np.float32)
    return batch


def decode_fast_rcnn(scores, offsets, rois, conf_threshold=0.01, nms_threshold=0.5, variances=VARIANCES):
    """One image's Fast R-CNN head output as detections: scores (k, C + 1) raw class scores
    (class 0 background) and offsets (k, 4 (C + 1)) of its k regions ``rois`` (k, 4). For
    each class c >= 1 and region with softmax probability p_c > ``conf_threshold``, the box
    is the region moved by the offsets of class c, label c - 1; then ``nms_per_class``.
    Also returns, in "rois", the index of the region each detection came from."""
    rois = _boxes("decode_fast_rcnn", rois, "rois")
    conf_threshold = real_number("decode_fast_rcnn", "conf_threshold", conf_threshold, finite=False)
    nms_threshold = real_number("decode_fast_rcnn", "nms_threshold", nms_threshold, 0.0, 1.0)
    probs = _class_probabilities("decode_fast_rcnn", scores)
    k, K = probs.shape
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape != (k, 4 * K) or rois.shape[0] != k:
        raise ValueError(
            f"decode_fast_rcnn: expected offsets ({k}, {4 * K}) and rois ({k}, 4) for scores {probs.shape}, "
            f"got {offsets.shape} and {rois.shape}"
        )
    r, c = np.nonzero(probs[:, 1:] > conf_threshold)
    c = c + 1
    columns = 4 * c[:, None] + np.arange(4)
    boxes = decode_boxes(offsets[r[:, None], columns].reshape(-1, 4), rois[r], variances)
    found = {"boxes": boxes, "scores": probs[r, c], "labels": (c - 1).astype(np.int64), "rois": r.astype(np.int64)}
    return nms_per_class(found, nms_threshold)


@njit(cache=True)
def paste_mask_kernel(mask, box, size, out):
    """out (size, size) = the m x m probabilities ``mask`` stretched over ``box`` (pixels):
    each pixel centre inside the box samples the mask bilinearly, outside the box 0."""
    m_h, m_w = mask.shape
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    for i in range(size):
        for j in range(size):
            out[i, j] = 0.0
            x, y = j + 0.5, i + 0.5
            if x < x1 or x >= x2 or y < y1 or y >= y2:
                continue
            u = (x - x1) / (x2 - x1) * m_w - 0.5  # in mask cells, cell centres at 0.5, 1.5, ...
            v = (y - y1) / (y2 - y1) * m_h - 0.5
            u, v = min(max(u, 0.0), m_w - 1.0), min(max(v, 0.0), m_h - 1.0)
            u0, v0 = int(u), int(v)  # the corner up-left of the sample, its weights fu, fv
            u1, v1 = min(u0 + 1, m_w - 1), min(v0 + 1, m_h - 1)
            fu, fv = u - u0, v - v0
            out[i, j] = (1 - fv) * ((1 - fu) * mask[v0, u0] + fu * mask[v0, u1]) + fv * (
                (1 - fu) * mask[v1, u0] + fu * mask[v1, u1]
            )


def paste_masks(masks, boxes, size, threshold=0.5):
    """Mask R-CNN's last step: each predicted m x m mask (k, m, m) of probabilities, made for
    the box of the same row (k, 4, fractions of the image), resized bilinearly onto the box
    in a size x size image and thresholded: (k, size, size) bool."""
    masks = np.asarray(masks, dtype=np.float64)
    boxes = _boxes("paste_masks", boxes)
    if masks.ndim != 3 or masks.shape[0] != boxes.shape[0]:
        raise ValueError(f"paste_masks: expected masks (k, m, m) for {boxes.shape[0]} boxes, got shape {masks.shape}")
    size = positive_int("paste_masks", "size", size)
    out = np.zeros((masks.shape[0], size, size))
    for k in range(masks.shape[0]):
        paste_mask_kernel(np.ascontiguousarray(masks[k]), boxes[k] * size, size, out[k])
    return out >= threshold


def mask_targets(gt_masks, rois, m):
    """The mask head's targets: for each region (k, 4) of fractions of the image, its
    object's binary mask gt_masks (k, size, size) cut to the region and resized to m x m
    by RoI Align (aligned, 2 x 2 samples per cell), then thresholded at 0.5: (k, m, m)
    float64 in {0, 1}. The same crop and resize that RoI Align applies to the features,
    so target and prediction see the same window."""
    gt_masks = np.asarray(gt_masks, dtype=np.float64)
    rois = _boxes("mask_targets", rois, "rois")
    if gt_masks.ndim != 3 or gt_masks.shape[0] != rois.shape[0]:
        raise ValueError(f"mask_targets: expected masks (k, size, size) for {rois.shape[0]} rois, got {gt_masks.shape}")
    size = gt_masks.shape[-1]
    regions = np.concatenate([np.arange(len(rois))[:, None], rois * size], axis=1)
    return (roi_align(gt_masks[:, None], regions, (m, m), 1.0, 2, True)[:, 0] >= 0.5).astype(np.float64)


def mask_iou(masks1, masks2):
    """The IoU of every pair of binary masks: masks1 (N, H, W), masks2 (M, H, W) -> (N, M):
    |A & B| / |A | B| counted in pixels (0 when both are empty)."""
    a, b = (np.asarray(m).astype(bool) for m in (masks1, masks2))
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"mask_iou: expected masks (N, H, W) and (M, H, W) of one size, got {a.shape} and {b.shape}")
    a, b = a.reshape(len(a), -1).astype(np.int64), b.reshape(len(b), -1).astype(np.int64)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


# --- YOLO outputs and targets ----------------------------------------------------------------


def decode_yolo(pred, S, B, C, conf_threshold):
    """Every box of a YOLO output whose score exceeds ``conf_threshold``, per image.

    pred: (N, S*S*(5B + C)) or (N, S, S, 5B + C), box b of cell (i, j) being
    [x, y, sqrt_w, sqrt_h, conf] at 5b .. 5b+4 and the C class scores last (the layout of
    ``nn.YOLOLoss``). Box b is decoded to fractions of the image,

        centre (cx, cy) = ((j + x) / S, (i + y) / S),    size (w, h) = (sqrt_w^2, sqrt_h^2)
        corners (cx - w/2, cy - h/2, cx + w/2, cy + h/2)          (not clipped to the image)

    its label is the class of the cell's highest class score p_c (the first on ties) and
    its score is conf x p_c (YOLO's class-specific confidence); it is kept when
    score > conf_threshold.

    Returns a list of N dicts {"boxes" (k, 4) float64, "scores" (k,) float64, "labels" (k,)
    int64}, boxes in cell order (i, then j, then b). Apply ``nms`` next.
    """
    _grid("decode_yolo", S, B, C)
    conf_threshold = real_number("decode_yolo", "conf_threshold", conf_threshold, finite=False)  # -inf: every box
    p = np.asarray(pred, dtype=np.float64)
    per_image = S * S * (5 * B + C)
    if p.ndim < 2 or p.size != p.shape[0] * per_image:
        raise ValueError(
            f"decode_yolo: expected pred to reshape to (N, S, S, 5B + C) = (N, {S}, {S}, {5 * B + C}), "
            f"got shape {p.shape}"
        )
    p = p.reshape(p.shape[0], S, S, 5 * B + C)
    detections = []
    for n in range(p.shape[0]):
        boxes, scores, labels = [], [], []
        for i in range(S):
            for j in range(S):
                class_scores = p[n, i, j, 5 * B :]
                label = int(np.argmax(class_scores))
                for b in range(B):
                    x, y, sqrt_w, sqrt_h, conf = p[n, i, j, 5 * b : 5 * b + 5]
                    score = conf * class_scores[label]
                    if score > conf_threshold:
                        cx, cy = (j + x) / S, (i + y) / S
                        w, h = sqrt_w**2, sqrt_h**2
                        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                        scores.append(score)
                        labels.append(label)
        detections.append(
            {
                "boxes": np.array(boxes, dtype=np.float64).reshape(-1, 4),
                "scores": np.array(scores, dtype=np.float64),
                "labels": np.array(labels, dtype=np.int64),
            }
        )
    return detections


def encode_yolo_targets(boxes, labels, S, C, dtype=np.float32):
    """YOLO targets (N, S, S, 5 + C) for ``nn.YOLOLoss`` from per-image boxes and labels.

    boxes: a list of N arrays (k_n, 4), (x1, y1, x2, y2) as fractions of the image (0 .. 1,
    as ``make_shapes_detection`` gives them); labels: a list of N integer arrays (k_n,) in
    [0, C). Each object goes to the cell (i, j) that holds its centre (cx, cy):

        j = floor(cx * S), i = floor(cy * S)           (a centre on the far edge, 1.0, goes to S - 1)
        target[n, i, j] = [cx * S - j, cy * S - i, x2 - x1, y2 - y1, 1, one-hot(label)]

    and every other cell is all zeros. YOLO v1 predicts at most one object per cell: when
    two centres fall in the same cell, the first object in the list keeps it and the
    others are left out of the target.
    """
    where = "encode_yolo_targets"
    _grid(where, S, 1, C)
    if len(boxes) != len(labels):
        raise ValueError(f"{where}: got boxes for {len(boxes)} images but labels for {len(labels)}")
    target = np.zeros((len(boxes), S, S, 5 + C), dtype=dtype)
    for n, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        image_boxes = _boxes(where, image_boxes, f"the boxes of image {n}")
        image_labels = _vector(where, image_labels, image_boxes.shape[0], f"the labels of image {n}", integer=True)
        for (x1, y1, x2, y2), label in zip(image_boxes, image_labels):
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            if not (0 <= cx <= 1 and 0 <= cy <= 1):
                raise ValueError(
                    f"{where}: box centres must lie in the image, 0 .. 1 (boxes are fractions of the "
                    f"image size, not pixels), got centre ({cx:g}, {cy:g}) in image {n}"
                )
            if not 0 <= label < C:
                raise ValueError(f"{where}: labels must be in [0, C) = [0, {C}), got {label} in image {n}")
            j, i = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
            if target[n, i, j, 4] == 1:
                continue  # one object per cell: the first one keeps it
            target[n, i, j, :5] = (cx * S - j, cy * S - i, x2 - x1, y2 - y1, 1)
            target[n, i, j, 5 + label] = 1
    return target


# --- mean average precision ------------------------------------------------------------------


def interpolated_average_precision(recall, precision):
    """PASCAL VOC's all-point interpolated AP: the area under the precision-recall curve
    after replacing each precision by the best precision at any recall at least as large,

        p_interp(r) = max_{r' >= r} p(r'),      AP = sum_k (r_k - r_{k-1}) * p_interp(r_k)

    over the points k where the recall increases (r_0 = 0). recall, precision: (m,), the
    cumulative values after each detection in descending score order.
    """
    r = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    p = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    for k in range(len(p) - 2, -1, -1):  # the envelope, from the right
        p[k] = max(p[k], p[k + 1])
    ap = 0.0
    for k in range(1, len(r)):
        if r[k] != r[k - 1]:
            ap += (r[k] - r[k - 1]) * p[k]
    return ap


IOU_TYPES = ("boxes", "masks")


def _checked_images(predictions, targets, iou_type="boxes"):
    """Per image: (predicted boxes or masks, scores, labels, target boxes or masks, labels),
    checked arrays."""
    where = "mean_average_precision"
    if iou_type not in IOU_TYPES:
        raise ValueError(f"{where}: iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    if len(predictions) != len(targets):
        raise ValueError(f"{where}: got predictions for {len(predictions)} images but targets for {len(targets)}")
    checked = []
    for n, (pred, true) in enumerate(zip(predictions, targets)):
        for d, what, keys in (
            (pred, "prediction", (iou_type, "scores", "labels")),
            (true, "target", (iou_type, "labels")),
        ):
            missing = [k for k in keys if k not in d]
            if missing:
                raise KeyError(f"{where}: the {what} of image {n} lacks {missing}; expected the keys {list(keys)}")
        if iou_type == "boxes":
            pb = _boxes(where, pred["boxes"], f"the predicted boxes of image {n}")
            tb = _boxes(where, true["boxes"], f"the target boxes of image {n}")
        else:
            pb, tb = np.asarray(pred["masks"], dtype=bool), np.asarray(true["masks"], dtype=bool)
            if pb.ndim != 3 or tb.ndim != 3 or pb.shape[1:] != tb.shape[1:]:
                raise ValueError(
                    f"{where}: the masks of image {n} must be (k, H, W) and (m, H, W) of one size, "
                    f"got {pb.shape} and {tb.shape}"
                )
        ps = _vector(where, pred["scores"], len(pb), f"the scores of image {n}")
        pl = _vector(where, pred["labels"], len(pb), f"the predicted labels of image {n}", integer=True)
        tl = _vector(where, true["labels"], len(tb), f"the target labels of image {n}", integer=True)
        checked.append((pb, ps, pl, tb, tl))
    return checked


def average_precision_per_class(predictions, targets, iou_threshold=0.5, iou_type="boxes"):
    """{class: AP} for every class present in the targets (PASCAL VOC, all points).

    For class c: the detections of c in all images are taken by descending score (equal
    scores in image order). Each one is a true positive when its highest-IoU ground-truth
    box of class c in the same image (the first on ties) has IoU >= iou_threshold and is
    not matched yet (it becomes matched), and a false positive otherwise: a second
    detection of an object already found counts against the detector. After each one,

        precision = TP / (TP + FP),    recall = TP / (number of ground-truth boxes of c)

    and AP = ``interpolated_average_precision(recall, precision)``; a class with no
    detection has AP = 0. Detections of classes absent from the targets are ignored.
    Arguments as in ``mean_average_precision``; with ``iou_type="masks"`` the IoU is the
    masks' (``mask_iou``), the rule the same (instance segmentation's mask AP).
    """
    iou_threshold = real_number("average_precision_per_class", "iou_threshold", iou_threshold, 0.0, 1.0)
    images = _checked_images(predictions, targets, iou_type)
    overlap = box_iou_kernel if iou_type == "boxes" else mask_iou
    classes = sorted({int(c) for *_, true_labels in images for c in true_labels})
    ap = {}
    for c in classes:
        detections = []  # (score, image, box or mask)
        truth = []  # per image: the ground-truth boxes (or masks) of class c
        for n, (pb, ps, pl, tb, tl) in enumerate(images):
            detections += [(ps[k], n, pb[k]) for k in np.flatnonzero(pl == c)]
            truth.append(tb[tl == c])
        n_truth = sum(len(t) for t in truth)
        matched = [np.zeros(len(t), dtype=bool) for t in truth]
        order = sorted(range(len(detections)), key=lambda d: -detections[d][0])  # stable
        tp = np.zeros(len(order))
        for rank, d in enumerate(order):
            _, n, found = detections[d]
            if len(truth[n]) == 0:
                continue  # a false positive: nothing of class c in this image
            iou = overlap(found[None], truth[n])[0]
            best = int(np.argmax(iou))  # first on ties
            if iou[best] >= iou_threshold and not matched[n][best]:
                matched[n][best] = True
                tp[rank] = 1
        true_positives = np.cumsum(tp)
        precision = true_positives / np.arange(1, len(order) + 1)
        recall = true_positives / n_truth
        ap[c] = interpolated_average_precision(recall, precision)
    return ap


def mean_average_precision(predictions, targets, iou_threshold=0.5, iou_type="boxes"):
    """mAP: the mean over the classes present in the targets of PASCAL VOC's all-point
    interpolated average precision (``average_precision_per_class``).

    predictions: a list with one dict per image, {"boxes" (k, 4), "scores" (k,),
    "labels" (k,) int} (an image without detections has k = 0); targets: the same list
    of {"boxes" (m, 4), "labels" (m,) int}. Boxes (x1, y1, x2, y2), in one unit for both.
    With ``iou_type="masks"`` the dicts hold "masks" (k, H, W) (bool) instead of "boxes",
    and the detections are matched by mask IoU (the mask mAP of instance segmentation).
    Returns a float in [0, 1].
    """
    ap = average_precision_per_class(predictions, targets, iou_threshold, iou_type)
    if not ap:
        raise ValueError("mean_average_precision: the targets hold no boxes, so no class to average over")
    return float(np.mean(list(ap.values())))
