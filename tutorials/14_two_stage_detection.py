# %% [markdown]
# # Tutorial 14: two-stage detection, from R-CNN to Fast R-CNN and Faster R-CNN
#
# A two-stage detector first proposes regions that may hold an object, then classifies
# each region and corrects its box. The family in three steps:
#
# - **R-CNN** (Girshick et al., 2014): about 2000 proposals per image from *selective
#   search* (a bottom-up grouping of similar pixels), each region cut out of the image,
#   warped to a fixed size and passed through a CNN on its own: 2000 network runs per
#   image.
# - **Fast R-CNN** (Girshick, 2015): the CNN runs **once** on the whole image. Each
#   proposal is projected onto the feature map (divided by the network's stride) and
#   **RoI pooling** max-pools its window into a fixed $P \times P$ grid of bins, whatever its
#   size. A small head then gives, per region, $C + 1$ class scores (class 0 the
#   background) and, for every class, 4 box offsets. It is trained with a sample of regions
#   per image (a quarter of them positives: IoU $\ge 0.5$ with an object) on
#
# $$L = \frac{1}{R}\sum_{r} \Big( -\log \mathrm{softmax}(z_r)_{c_r} \; + \; [c_r \ge 1]
#       \sum_{j \in \{x, y, w, h\}} \mathrm{smoothL1}\big(\hat t^{\,c_r}_{jr} - t_{jr}\big) \Big),$$
#
#   where $c_r$ is the region's class and $t_r$ the offsets of its object from the region
#   (SSD's centre-size coding, scaled by (0.1, 0.2) as Fast R-CNN's implementation does):
#   the box loss counts only the offsets of the true class.
# - **Faster R-CNN** (Ren et al., 2015) replaces the external proposals by a *region
#   proposal network* on the same feature map (section 7).
#
# Here the proposals are **sliding windows** at three sizes (the simplest stand-in for
# selective search: every window, no grouping), the backbone runs once per image, and
# `nn.RoIPool` cuts the windows out of its feature map. The detector is
# `minidl.detectors.FastRCNN`, whose `forward` and `backward` call the parts in order and
# in reverse order.
#
# Run: `python tutorials/14_two_stage_detection.py [--quick] [--out outputs] [--seed 0]`
# (the full run takes about 3 minutes on 2 cores: 6 passes over 3000 images.)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import minidl
from minidl import nn, optim
from minidl.data import make_shapes_detection
from minidl.detection import (
    anchors,
    box_iou,
    head_batch,
    mean_average_precision,
    sliding_windows,
)
from minidl.detectors import FastRCNN
from minidl.ops.roi_pool import pool_bin
from minidl.tutorial import SHAPE_COLOURS, draw_box, headline, save, setup, show_image

args = setup("Two-stage detection: R-CNN, Fast R-CNN, Faster R-CNN", seed=0)
start = time.perf_counter()
CLASSES = ("circle", "square", "triangle")
C, SIZE = len(CLASSES), 64

# %% [markdown]
# ## 1. The data, as in tutorial 10
# 64 x 64 images with 1 to 3 circles, squares and triangles; training and test images from
# seeds 1 and 3 (the same test images as tutorials 10 and 15).

# %%
n_train, n_test, epochs = 3000, 500, 6
if args.quick:
    n_train, n_test, epochs = 600, 64, 2
x_train, boxes_train, labels_train = make_shapes_detection(n_train, size=SIZE, max_objects=3, seed=1)
x_test, boxes_test, labels_test = make_shapes_detection(n_test, size=SIZE, max_objects=3, seed=3)
print(f"{n_train} training and {n_test} test images of shape {x_train.shape[1:]}")

# %% [markdown]
# ## 2. Proposals: sliding windows
# Square windows of 12, 18 and 26 pixels every 4 pixels: 196 + 144 + 100 = 440 regions per
# image. R-CNN would run its CNN 440 times per image on them; a proposal only has to
# overlap its object roughly, since the head corrects the box. The recall below counts the
# objects that some window overlaps with IoU >= 0.5.

# %%
proposals = sliding_windows([12, 18, 26], stride=4, image_size=SIZE)  # (440, 4), fractions of the image
best = np.concatenate([box_iou(b, proposals).max(axis=1) for b in boxes_test])
print(
    f"{len(proposals)} proposals per image; objects with a proposal of IoU >= 0.5: {np.mean(best >= 0.5):.3f}, "
    f">= 0.7: {np.mean(best >= 0.7):.3f}"
)

# %% [markdown]
# ## 3. Fast R-CNN: one backbone run, RoI pooling on its features
# The backbone (two blocks with 2 x 2 pooling, one without) turns 64 x 64 pixels into a
# 16 x 16 feature map with 64 channels: stride 4, so `spatial_scale = 1/4`. RoI pooling
# (torchvision's rule, `minidl/ops/roi_pool.py`) rounds the region's corners to the feature
# grid, cuts the rounded window into P x P = 4 x 4 bins (edges at floor and ceil of equal
# fractions, so neighbouring bins may share a row) and keeps the maximum of each bin:
# every region, whatever its size, becomes a (64, 4, 4) block for the head. Drawn below
# on the feature map, channel by channel mean: a region (dashed), its rounded window, the
# 16 bins and, for one channel, where each bin's maximum sits (the arg-max, where the
# backward pass sends the bin's gradient).

# %%
minidl.seed(args.seed)


def block(c_in, c_out, pool=True):
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)]
    return layers + [nn.MaxPool2d(2)] if pool else layers


P, HIDDEN = 4, 256
backbone = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64, pool=False))  # (N, 64, 16, 16)
head = nn.Sequential(nn.Flatten(), nn.Linear(64 * P * P, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU())
model = FastRCNN(backbone, nn.RoIPool(P, spatial_scale=1 / 4), head, HIDDEN, C)
print(model)
print(f"{sum(p.data.size for p in model.parameters())} parameters")


def draw_roi_pooling(ax, image_index, region, channel=0):
    """The feature map of one training image (mean over channels), a region in pixels, its
    rounded window and bins (the op's own ``pool_bin``), and channel ``channel``'s arg-max
    in each bin."""
    model.eval()
    features = model.backbone(x_train[image_index : image_index + 1])  # (1, 64, 16, 16)
    H, W = features.shape[2:]
    ax.imshow(features[0].mean(axis=0), cmap="gray", extent=(0, W, H, 0))
    roi = np.array([[0, *region]], dtype=np.float32)
    x1, y1, x2, y2 = np.array(region) / 4
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="yellow", linestyle="--", linewidth=2))
    for p in range(P):
        for q in range(P):
            _, r0, r1, c0, c1 = pool_bin(roi, 0, p, q, P, P, 0.25, H, W)
            ax.add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, edgecolor="tab:orange", linewidth=1))
            window = features[0, channel, r0:r1, c0:c1]
            i, j = np.unravel_index(np.argmax(window), window.shape)
            ax.plot(c0 + j + 0.5, r0 + i + 0.5, "o", color="tab:red", markersize=4)
    ax.set(
        title=f"RoI pooling on the 16 x 16 feature map: region {region} px\n(dashed), 4 x 4 bins, arg-max of channel {channel} (dots)"
    )
    ax.title.set_fontsize(9)


fig, axes = plt.subplots(1, 2, figsize=(10, 5))
show_image(axes[0], x_train[0], "a training image and a few of its 440 proposals")
for k in range(0, len(proposals), 37):
    draw_box(axes[0], proposals[k], "yellow", linewidth=0.8)
region = tuple(float(v) for v in np.round(boxes_train[0][0] * SIZE + [-3, -3, 3, 3], 1))
draw_box(axes[0], np.array(region) / SIZE, "tab:orange", "the region pooled on the right", linewidth=2)
draw_roi_pooling(axes[1], 0, region)
fig.tight_layout()
save(fig, "14_proposals_and_roi_pooling.png")

# %% [markdown]
# ## 4. Training the head and the backbone together
# Per image, the ground-truth boxes join the proposals (so each object has one perfect
# positive) and `sample_rois` picks 32 regions, at most a quarter of them positives (IoU
# >= 0.5), the rest background (IoU < 0.5); `fast_rcnn_targets` gives each its class and,
# in the 4 columns of that class only, the offsets of its object. `head_batch` does both
# for a batch of images and returns the regions as rows (n, x1, y1, x2, y2) in pixels.
#
# The loss has two parts. `nn.SoftmaxCrossEntropy` on the C + 1 scores of every region;
# `nn.SmoothL1Loss(reduction="none")` on the offsets, of which the weights keep only the 4
# of the true class of the positives, summed and divided by the number of regions, so its
# upstream gradient is weights / R. `model.backward` takes both gradients: they meet in
# the hidden layer, go back through the head, through RoI pooling into the windows of the
# shared feature map (regions overlap, their gradients add up) and through the backbone.

# %%
optimizer = optim.Adam(model.parameters(), lr=1e-3)
scheduler = optim.CosineAnnealingLR(optimizer, T_max=epochs)
classification, box_regression = nn.SoftmaxCrossEntropy(), nn.SmoothL1Loss(reduction="none")
rng = np.random.default_rng(args.seed)
batch_size, history = 16, []
train_start = time.perf_counter()
for epoch in range(epochs):
    model.train()
    order, total = rng.permutation(n_train), 0.0
    for first in range(0, n_train, batch_size):
        images = order[first : first + batch_size]
        batch = head_batch(
            proposals,
            [boxes_train[n] for n in images],
            [labels_train[n] for n in images],
            C,
            SIZE,
            num_samples=32,
            positive_fraction=0.25,
            rng=rng,
        )
        scores, offsets = model(x_train[images], batch["rois"])
        R = len(batch["labels"])
        loss_cls = classification(scores, batch["labels"])
        loss_box = float((box_regression(offsets, batch["offsets"]) * batch["weights"]).sum()) / R
        model.backward(classification.backward(), box_regression.backward(batch["weights"] / R))
        optimizer.step()
        optimizer.zero_grad()
        total += (loss_cls + loss_box) * len(images)
    scheduler.step()
    history.append(total / n_train)
    print(f"epoch {epoch + 1}/{epochs}  loss {history[-1]:.4f}  ({time.perf_counter() - train_start:.0f} s)")
train_time = time.perf_counter() - train_start

# %% [markdown]
# ## 5. Detections and mAP
# At test time every proposal of an image goes through the head, and the backbone still
# runs once per image: `model.detect` takes 8 images, 3520 regions, per forward pass.
# For each class it keeps the regions whose softmax probability exceeds 0.01, moves each
# by the offsets of that class (`decode_fast_rcnn`), clips the boxes to the image and
# runs NMS per class (IoU 0.5).

# %%
infer_start = time.perf_counter()
detections = model.detect(x_test, proposals, conf_threshold=0.01, nms_threshold=0.5)
images_per_second = n_test / (time.perf_counter() - infer_start)
targets = [{"boxes": b, "labels": l} for b, l in zip(boxes_test, labels_test)]
map50 = mean_average_precision(detections, targets, iou_threshold=0.5)
map75 = mean_average_precision(detections, targets, iou_threshold=0.75)

shown = range(min(4, n_test))
fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.6), squeeze=False)
for ax, n in zip(axes[0], shown):
    show_image(ax, x_test[n], f"test image {n}")
    d = detections[n]
    for box, score, label, r in zip(d["boxes"], d["scores"], d["labels"], d["rois"]):
        if score > 0.3:
            draw_box(ax, proposals[r], "white", linewidth=1, linestyle=":")
            draw_box(ax, box, SHAPE_COLOURS[label], f"{CLASSES[label]} {score:.2f}", linewidth=1.5)
fig.suptitle("Fast R-CNN: detections above 0.3 (colour) and the proposals they came from (dotted)")
fig.tight_layout()
save(fig, "14_detections.png")
print(f"mAP@0.5 on {n_test} held-out images: {map50:.4f}; mAP@0.75 {map75:.4f}")

# %% [markdown]
# ## 6. Three detectors on the same images
# Measured full runs, seed 0, on 2 CPU cores; mAP on the 500 test images of seed 3;
# images per second for the network, decoding and NMS:
#
# | detector | mAP@0.5 | mAP@0.75 | training | images/s |
# |---|---|---|---|---|
# | YOLO v1 (tutorial 10) | 0.959 | 0.491 | 261 s (20 epochs) | 279 |
# | SSD (tutorial 15) | 0.998 | 0.987 | 225 s (15 epochs) | 295 |
# | Fast R-CNN (this tutorial) | 1.000 | 0.999 | 141 s (6 epochs) | 44 |
#
# On these easy images every detector finds the objects (mAP@0.5 of 0.96 to 1.00); the
# difference is in the boxes. At IoU 0.75 YOLO v1 falls to 0.49: its fully connected head
# regresses every coordinate from nothing and a cell keeps one object. SSD and Fast
# R-CNN each correct a box that is already about right (an anchor, a proposal) and stay
# near 0.99. The price of the two-stage detector is at test time: 440 regions per image
# through its head make it about 6 times slower than the single-shot detectors, and it
# trains on 32 sampled regions per image where SSD's loss sees every anchor. (The
# training times are for the epochs each tutorial sets, not for equal budgets: Fast R-CNN
# gets 6, which already reach mAP@0.5 = 1.000 here.)

# %%
print(
    f"comparison row: Fast R-CNN | mAP@0.5 {map50:.3f} | mAP@0.75 {map75:.3f} | "
    f"training {train_time:.0f} s | {images_per_second:.0f} images/s (network, decoding and NMS)"
)

# %% [markdown]
# ## 7. Faster R-CNN: proposals from the network itself (explained, not built)
# Sliding windows are cheap to make but many (440 here, tens of thousands on real images
# at real scales) and blind: most hold only background. Faster R-CNN's *region proposal
# network* (RPN) learns the proposals. It is a small convolution slid over the backbone's
# feature map with, at every cell, $k$ anchors (the boxes of tutorial 15: several scales
# and aspect ratios centred on the cell), and for each anchor two outputs: an
# *objectness* score (object or background, whatever the class) and 4 offsets. It is
# trained exactly as SSD's predictor, with 2 classes: anchors matched to objects by IoU,
# cross-entropy on objectness and smooth L1 on the offsets of the positives (here
# `nn.MultiBoxLoss` with K = 2 would do). At test time the best few hundred anchors after
# their offsets and NMS become the proposals of the Fast R-CNN head, which shares the
# backbone: one network, end to end.
#
# We do not build it: on these images the sliding windows already give every object a
# proposal of IoU >= 0.5 (section 2), so an RPN would make the detector faster (fewer
# regions) but not more accurate, and its training is that of tutorial 15. The figure
# shows what it would look at: the 16 x 16 feature map's cells, the 6 anchors of a few of
# them, and the anchors that would be positives for the objects of one image.

# %%
rpn_anchors = anchors(16, (0.2, 0.35), (1.0, 2.0, 0.5))  # k = 6 anchors at each of 16 x 16 cells
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
show_image(axes[0], x_train[0], "RPN anchors: k = 6 per cell of the 16 x 16 map (3 cells drawn)")
centres = (rpn_anchors[:256, :2] + rpn_anchors[:256, 2:]) / 2
axes[0].plot(centres[:, 0], centres[:, 1], ".", color="white", markersize=2)
for cell, colour in ((3 * 16 + 4, "yellow"), (8 * 16 + 8, "orange"), (12 * 16 + 11, "magenta")):
    for a in range(6):
        draw_box(axes[0], rpn_anchors[a * 256 + cell], colour, linewidth=1)
iou = box_iou(rpn_anchors, boxes_train[0])
show_image(axes[1], x_train[0], "anchors with IoU >= 0.5: the RPN's positives (objectness 1)")
for g, label in enumerate(labels_train[0]):
    for a in np.flatnonzero(iou[:, g] >= 0.5):
        draw_box(axes[1], rpn_anchors[a], SHAPE_COLOURS[label], linewidth=0.8)
fig.tight_layout()
save(fig, "14_rpn_anchors.png")
print(f"an RPN here: {len(rpn_anchors)} anchors, {int((iou.max(axis=1) >= 0.5).sum())} positives in image 0")

wall = time.perf_counter() - start
print(f"seed {args.seed}, wall time {wall:.0f} s ({wall / 60:.1f} min), of which training {train_time:.0f} s")
headline("map50", map50)
headline("map75", map75)
