# %% [markdown]
# # Tutorial 15: single-shot detection with anchors (SSD)
#
# YOLO v1 (tutorial 10) lets each cell of a grid regress its boxes from nothing, through a
# fully connected head. SSD (Liu et al., 2016, "SSD: Single Shot MultiBox Detector") keeps
# the single network run but changes three things:
#
# 1. **Anchors** (SSD calls them default boxes). Every cell $(i, j)$ of a feature map
#    carries a fixed set of boxes of several scales $s$ and aspect ratios $r$ (width over
#    height), of width $s\sqrt r$ and height $s/\sqrt r$. The network does not invent a box:
#    for each anchor it predicts a small correction and a class.
# 2. **A convolutional predictor.** A 3 x 3 convolution on the feature map gives, at every
#    cell and for each of its $A_{cell}$ anchors, 4 offsets and $K = C + 1$ class scores
#    (class 0 is the background): $(4 + K) A_{cell}$ output channels, the same small filter
#    slid over every position.
# 3. **Matching and a classification loss with background.** Before training, each
#    ground-truth box is assigned to the anchors that overlap it (IoU $\ge 0.5$, and in any
#    case its best anchor); those anchors are the positives, all others background. The
#    loss (`nn.MultiBoxLoss`) is
#
# $$L = \frac{1}{N_{pos}} \Big( \sum_{a \in Pos} \sum_{j \in \{x, y, w, h\}}
#   \mathrm{smoothL1}\big(\hat t_{ja} - t_{ja}\big) \; + \sum_{a \in Pos \,\cup\, Neg} -\log \mathrm{softmax}(z_a)_{c_a} \Big)$$
#
# where $t_a$ are the anchor's target offsets in SSD's centre-size coding,
#
# $$t_x = \frac{c_x - c^a_x}{w^a v_0}, \quad t_y = \frac{c_y - c^a_y}{h^a v_0}, \quad
#   t_w = \frac{1}{v_1} \log\frac{w}{w^a}, \quad t_h = \frac{1}{v_1} \log\frac{h}{h^a}, \qquad (v_0, v_1) = (0.1, 0.2),$$
#
# and $Neg$ holds only the **hardest negatives**: the background anchors with the largest
# classification loss, three per positive. Without that choice the thousands of easy
# background anchors would drown the few positives.
#
# We draw the anchors, the matching and the mined negatives, train a small SSD on the
# shapes of tutorial 10 (same generator, seeds and image size), and compare it with YOLO.
#
# Run: `python tutorials/15_single_shot_detection.py [--quick] [--out outputs] [--seed 0]`
# (the full run takes about 4 minutes on 2 cores: 15 passes over 3000 images.)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import make_shapes_detection
from minidl.detection import anchors, box_iou, decode_ssd, encode_ssd_targets, match_anchors, mean_average_precision
from minidl.train import fit, predict
from minidl.tutorial import SHAPE_COLOURS, draw_box, headline, save, setup, show_image

args = setup("Single-shot detection with anchors (SSD)", seed=0)
start = time.perf_counter()
CLASSES = ("circle", "square", "triangle")
C = len(CLASSES)
K = C + 1  # the classes and the background (class 0)

# %% [markdown]
# ## 1. The data, as in tutorial 10
# 64 x 64 images with 1 to 3 circles, squares and triangles; boxes in fractions of the
# image; training, validation and test images from seeds 1, 2 and 3.

# %%
n_train, n_val, n_test, epochs = 3000, 300, 500, 15
if args.quick:
    n_train, n_val, n_test, epochs = 600, 16, 64, 3
x_train, boxes_train, labels_train = make_shapes_detection(n_train, size=64, max_objects=3, seed=1)
x_val, boxes_val, labels_val = make_shapes_detection(n_val, size=64, max_objects=3, seed=2)
x_test, boxes_test, labels_test = make_shapes_detection(n_test, size=64, max_objects=3, seed=3)
print(f"{n_train} training, {n_val} validation, {n_test} test images of shape {x_train.shape[1:]}")

# %% [markdown]
# ## 2. Anchors
# The backbone below turns the 64 x 64 image into an 8 x 8 feature map (stride 8). Each of
# its 64 cells gets 2 scales (0.2 and 0.35 of the image: 13 and 22 pixels, for shapes of 9
# to 26 pixels) times 3 aspect ratios (1, 2, 1/2): 6 anchors per cell, 384 in all. All
# 6 anchors of a cell share its centre; the area depends only on the scale.

# %%
feature_size, scales, ratios = 8, (0.2, 0.35), (1.0, 2.0, 0.5)
A_cell = len(scales) * len(ratios)
anchor_boxes = anchors(feature_size, scales, ratios)  # (A, 4), row a H W + i W + j
A = len(anchor_boxes)
print(f"{A} anchors: {feature_size} x {feature_size} cells x {A_cell} shapes")

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
show_image(axes[0], x_train[0], f"the {A_cell} anchors of cell (3, 4), and every cell's centre")
centres = (anchor_boxes[:, :2] + anchor_boxes[:, 2:]) / 2
axes[0].plot(centres[:64, 0], centres[:64, 1], ".", color="white", markersize=3)
i, j = 3, 4
for a in range(A_cell):
    row = a * feature_size * feature_size + i * feature_size + j
    draw_box(axes[0], anchor_boxes[row], "yellow" if a < len(ratios) else "orange", linewidth=1.5)

# %% [markdown]
# ## 3. Matching: which anchors answer for which object
# `match_anchors` gives each anchor the object it overlaps most if that IoU is at least
# 0.5, and every object its best anchor whatever the IoU. The matched anchors are the
# positives; `encode_ssd_targets` stores, for each anchor, the offsets of its object in the
# coding above and its label (object class + 1, or 0 for the background): a (5, A) target
# per image.

# %%
matched = match_anchors(anchor_boxes, boxes_train[0], iou_threshold=0.5)
show_image(axes[1], x_train[0], "positive anchors (dashed) of each object (solid)")
for g, (box, label) in enumerate(zip(boxes_train[0], labels_train[0])):
    draw_box(axes[1], box, SHAPE_COLOURS[label], CLASSES[label], linewidth=2.5)
    for a in np.flatnonzero(matched == g):
        draw_box(axes[1], anchor_boxes[a], SHAPE_COLOURS[label], linewidth=1, linestyle="--")
fig.tight_layout()
save(fig, "15_anchors_and_matching.png")

y_train = encode_ssd_targets(boxes_train, labels_train, anchor_boxes)  # (N, 5, A)
y_val = encode_ssd_targets(boxes_val, labels_val, anchor_boxes)
positives = (y_train[:, 4] > 0).sum(axis=1)
n_objects = sum(len(b) for b in boxes_train)
best_iou = [box_iou(b, anchor_boxes).max(axis=1) for b in boxes_train]
print(
    f"image 0: {len(boxes_train[0])} objects, positive anchors per object "
    f"{[int((matched == g).sum()) for g in range(len(boxes_train[0]))]}; over the training set "
    f"{positives.mean():.1f} positives of {A} anchors per image ({positives.sum() / n_objects:.1f} per object); "
    f"every object's best anchor has IoU {min(b.min() for b in best_iou):.2f} or more"
)

# %% [markdown]
# ## 4. The network: a backbone and a convolutional predictor
# Three blocks of 3 x 3 convolution, batch norm, leaky ReLU and 2 x 2 max pooling take
# 64 -> 8 pixels; a fourth block keeps 8 x 8. The predictor is one 3 x 3 convolution to
# $(4 + K) A_{cell} = 48$ channels, and the output is read as (N, 4 + K, A): channel
# $v A_{cell} + a$ at cell (i, j) is value v of anchor a H W + i W + j, exactly the order of
# `anchors`, so `Flatten` then `Unflatten` do it without a copy. SSD proper puts such a
# predictor on several feature maps of decreasing size (38 x 38 to 1 x 1 for its 300-pixel
# images), each with anchors of its own scale; our objects span a factor of 3 in size and
# one map with two scales covers them.

# %%
minidl.seed(args.seed)


def block(c_in, c_out, pool=True):
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)]
    return layers + [nn.MaxPool2d(2)] if pool else layers


model = nn.Sequential(
    *block(3, 16),
    *block(16, 32),
    *block(32, 64),
    *block(64, 64, pool=False),  # (N, 64, 8, 8)
    nn.Conv2d(64, (4 + K) * A_cell, 3, padding=1),  # (N, 48, 8, 8): the predictor
    nn.Flatten(),
    nn.Unflatten(1, (4 + K, A)),  # (N, 4 + K, A): offsets and class scores of every anchor
)
loss_fn = nn.MultiBoxLoss(neg_pos_ratio=3)
print(model)
print(f"{sum(p.data.size for p in model.parameters())} parameters; output {predict(model, x_train[:2]).shape}")

# %% [markdown]
# ## 5. Hard negatives
# Before training, every anchor scores about 1/K for every class, so all the background
# anchors have about the same loss, log K. The loss keeps, in each image, the 3 x (number
# of positives) negatives of largest cross-entropy. Drawn below: the positives and the
# mined negatives of one image, by the untrained network and by the trained one. Once
# the network has learnt the background, the mined negatives are the hard ones: anchors
# half on an object, or on the edge of one.


# %%
def draw_mining(ax, n, title):
    """The positives (solid) and mined negatives (dotted, white) of training image n."""
    loss_fn(predict(model, x_train[n : n + 1]), y_train[n : n + 1])
    show_image(ax, x_train[n], title)
    for a in np.flatnonzero(loss_fn.selected[0] == 2):
        draw_box(ax, anchor_boxes[a], "white", linewidth=1, linestyle=":")
    for a in np.flatnonzero(loss_fn.selected[0] == 1):
        draw_box(ax, anchor_boxes[a], SHAPE_COLOURS[int(y_train[n, 4, a]) - 1], linewidth=1.5)
    chosen = loss_fn.selected[0]
    return int((chosen == 1).sum()), int((chosen == 2).sum())


fig, mining_axes = plt.subplots(1, 2, figsize=(10, 5))
n_pos, n_neg = draw_mining(mining_axes[0], 1, "untrained: positives and mined negatives")
print(f"image 1: {n_pos} positives, {n_neg} mined negatives of {A - n_pos} background anchors (3 : 1)")

# %% [markdown]
# ## 6. Training
# The target is an array, so `fit` trains the SSD like any network: Adam, its learning rate
# falling from 1e-3 to 0 along a cosine.

# %%
optimizer = optim.Adam(model.parameters(), lr=1e-3)
train_start = time.perf_counter()
history = fit(
    model,
    loss_fn,
    optimizer,
    (x_train, y_train),
    val_data=(x_val, y_val),
    epochs=epochs,
    batch_size=32,
    seed=args.seed,
    scheduler=optim.CosineAnnealingLR(optimizer, T_max=epochs),
)
train_time = time.perf_counter() - train_start
loss_fn(predict(model, x_val), y_val)
print(
    f"trained {epochs} epochs in {train_time:.0f} s; validation loss {history.val_loss[-1]:.4f} = "
    f"{loss_fn.terms['loc']:.4f} (boxes) + {loss_fn.terms['conf']:.4f} (classes)"
)
draw_mining(mining_axes[1], 1, "trained: the mined negatives are the hard ones")
fig.tight_layout()
save(fig, "15_hard_negatives.png")

# %% [markdown]
# ## 7. Detections and mAP
# `decode_ssd` turns every anchor's class scores into probabilities (softmax), keeps for
# each class the anchors whose probability exceeds 0.01, moves each such anchor by its
# predicted offsets (the inverse of the coding) and removes duplicates by NMS per class
# (IoU 0.45, SSD's value). The score of a detection is its class probability.

# %%
infer_start = time.perf_counter()
detections = decode_ssd(predict(model, x_test), anchor_boxes, conf_threshold=0.01, nms_threshold=0.45)
images_per_second = n_test / (time.perf_counter() - infer_start)
targets = [{"boxes": b, "labels": l} for b, l in zip(boxes_test, labels_test)]
map50 = mean_average_precision(detections, targets, iou_threshold=0.5)
map75 = mean_average_precision(detections, targets, iou_threshold=0.75)

shown = range(min(4, n_test))
fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), squeeze=False)
for ax, n in zip(axes[0], shown):
    show_image(ax, x_test[n], f"test image {n}")
    for box in boxes_test[n]:
        draw_box(ax, box, "white", linewidth=3, alpha=0.5)
    for box, score, label in zip(*(detections[n][k] for k in ("boxes", "scores", "labels"))):
        if score > 0.3:
            draw_box(ax, box, SHAPE_COLOURS[label], f"{CLASSES[label]} {score:.2f}", linewidth=1.5)
fig.suptitle("SSD detections above 0.3 (colour) over the ground truth (white)")
fig.tight_layout()
save(fig, "15_detections.png")

# %% [markdown]
# ## 8. SSD and YOLO v1 on the same images
# Measured full runs, seed 0, on 2 CPU cores (images per second: the network, decoding
# and NMS over the 500 test images):
#
# | detector | mAP@0.5 | mAP@0.75 | training | images/s |
# |---|---|---|---|---|
# | YOLO v1 (tutorial 10) | 0.959 | 0.491 | 261 s (20 epochs) | 279 |
# | SSD (this tutorial) | 0.998 | 0.987 | 225 s (15 epochs) | 295 |
#
# The anchors are why SSD's boxes are tighter at IoU 0.75: each prediction is a small
# correction of a box that already has about the right size and place, where YOLO's fully
# connected head has to produce every coordinate from scratch, and a YOLO cell can hold
# only one object. The comparison with the two-stage detectors is in tutorial 14.

# %%
print(f"mAP@0.5 on {n_test} held-out images: {map50:.4f}; mAP@0.75 {map75:.4f}")
print(
    f"comparison row: SSD | mAP@0.5 {map50:.3f} | mAP@0.75 {map75:.3f} | "
    f"training {train_time:.0f} s | {images_per_second:.0f} images/s (network, decoding and NMS)"
)
wall = time.perf_counter() - start
print(f"seed {args.seed}, wall time {wall:.0f} s ({wall / 60:.1f} min), of which training {train_time:.0f} s")
headline("map50", map50)
headline("map75", map75)
