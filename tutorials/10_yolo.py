# %% [markdown]
# # Tutorial 10: object detection with YOLO v1, from sliding windows to mAP
#
# From classification to detection in three steps. The simplest detector classifies local
# regions, a window slid over the image at many positions and scales: one classifier run
# per window. YOLO (Redmon et al., 2016) runs the network once: it cuts the image into an
# $S \times S$ grid and, for every cell, regresses $B$ boxes
# $[\hat x, \hat y, \sqrt{\hat w}, \sqrt{\hat h}, \hat C]$ and $C$ class scores
# $\hat p(c)$, an $S \times S \times (5B + C)$ tensor. $(\hat x, \hat y)$ is the box
# centre's offset inside the cell, $(\hat w, \hat h)$ its size as fractions of the image,
# $\hat C$ its confidence (trained to be the IoU of the box with the object, 0 where there
# is none), and $\hat p(c)$ the class probabilities $p_c$ of the cell, given that it holds an
# object. A cell is responsible for the object whose centre falls in it, and of its $B$
# boxes the one with the highest IoU with the object is responsible for it:
# $\mathbb{1}^{obj}_{ij} = 1$ for that box $j$ of cell $i$, and
# $\mathbb{1}^{noobj}_{ij} = 1 - \mathbb{1}^{obj}_{ij}$. Training minimises the paper's
# multi-part squared error (`nn.YOLOLoss`), summed over the cells $i$ and boxes $j$ and
# divided by the batch size:
#
# $$\begin{aligned}
# L = {} & \lambda_{coord} \sum_{i=0}^{S^2-1} \sum_{j=0}^{B-1} \mathbb{1}^{obj}_{ij}
#          \left[ (x_i - \hat x_{ij})^2 + (y_i - \hat y_{ij})^2
#          + \left(\sqrt{w_i} - \sqrt{\hat w_{ij}}\right)^2 + \left(\sqrt{h_i} - \sqrt{\hat h_{ij}}\right)^2 \right] \\
#   & + \sum_{i} \sum_{j} \mathbb{1}^{obj}_{ij} \left(\mathrm{IoU}_{ij} - \hat C_{ij}\right)^2
#     + \lambda_{noobj} \sum_{i} \sum_{j} \mathbb{1}^{noobj}_{ij}\, \hat C_{ij}^2
#     + \sum_{i} \mathbb{1}^{obj}_{i} \sum_{c} \left(p_i(c) - \hat p_i(c)\right)^2 .
# \end{aligned}$$
#
# $\lambda_{coord} = 5$ makes the few box coordinates count more than the many
# confidences; $\lambda_{noobj} = 0.5$ keeps the mass of empty cells from pushing every
# confidence to zero. The square roots make an error of a few pixels cost more on a small
# box than on a large one. The network predicts $\sqrt{\hat w}$ directly, so no root of a
# prediction is ever taken. At test time each box is scored by $\hat C \cdot \hat p(c)$
# for its cell's best class $c$, the many overlapping boxes are merged by non-maximum
# suppression (NMS), and the detector is scored by the mean average precision (mAP): a
# detection is a true positive when its IoU with an unmatched ground-truth box is at least
# 0.5, where
#
# $$\mathrm{IoU}(A, B) = \frac{\mathrm{area}(A \cap B)}{\mathrm{area}(A \cup B)} .$$
#
# We draw the grid and the IoU, train a small YOLO on synthetic circles, squares and
# triangles (64 x 64 pixels, 3 classes), draw its raw boxes, the boxes left after NMS and
# the ground truth, and measure its mAP@0.5 on held-out images.
#
# Run: `python tutorials/10_yolo.py [--quick] [--out outputs] [--seed 0]`
# (the full run takes a few minutes on 2 cores: 20 passes over 3000 images.)


# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import minidl
from minidl import nn, optim
from minidl.data import make_shapes_detection
from minidl.detection import (
    average_precision_per_class,
    box_iou,
    decode_yolo,
    encode_yolo_targets,
    mean_average_precision,
    nms_per_class,
)
from minidl.train import fit, predict
from minidl.tutorial import SHAPE_COLOURS, draw_box, headline, save, setup, show_image

args = setup("Object detection with YOLO v1", seed=0)
start = time.perf_counter()

CLASSES = ("circle", "square", "triangle")
COLOURS = SHAPE_COLOURS
S, B, C = 4, 2, 3  # a 4 x 4 grid, 2 boxes per cell, 3 classes: 4 * 4 * (5 * 2 + 3) = 208 outputs


# %% [markdown]
# ## 1. The data: shapes with their boxes
# `make_shapes_detection` draws 1 to 3 non-overlapping circles, squares and triangles on
# a noisy background. Boxes are (x1, y1, x2, y2) in fractions of the image, so they do not
# depend on the image size. The training, validation and test images come from three
# different seeds: the test images are never seen during training.

# %%
n_train, n_val, n_test, epochs = 3000, 300, 500, 20
if args.quick:
    n_train, n_val, n_test, epochs = 600, 16, 64, 4
x_train, boxes_train, labels_train = make_shapes_detection(n_train, size=64, max_objects=3, seed=1)
x_val, boxes_val, labels_val = make_shapes_detection(n_val, size=64, max_objects=3, seed=2)
x_test, boxes_test, labels_test = make_shapes_detection(n_test, size=64, max_objects=3, seed=3)
n_objects = sum(len(b) for b in boxes_train)
print(
    f"{n_train} training images ({n_objects} objects, {n_objects / n_train:.2f} per image), "
    f"{n_val} validation, {n_test} test images of shape {x_train.shape[1:]}"
)

# %% [markdown]
# ## 2. From sliding windows to the YOLO grid
# A sliding-window detector asks a classifier "is there a shape here, and which?" for every
# window: on this 64 x 64 image, windows of 16, 24 and 32 pixels moved by 4 pixels are
# already 169 + 121 + 81 = 371 classifier runs, and their boxes can only be the windows'
# own. YOLO runs one network on the whole image and lets every cell of an S x S grid
# regress its boxes: the cell that holds an object's centre (dot) is responsible for it.
# `encode_yolo_targets` writes, in that cell, [x, y, w, h, obj = 1, one-hot class]:
# (x, y) the centre's offset inside the cell, (w, h) the size as fractions of the image.

# %%
windows = {size: ((64 - size) // 4 + 1) ** 2 for size in (16, 24, 32)}
print(
    f"sliding windows on a 64 x 64 image (stride 4): {windows}, {sum(windows.values())} classifier runs; "
    f"YOLO: 1 network run for {S} x {S} cells x {B} boxes"
)

n = 0
image, boxes, labels = x_train[n], boxes_train[n], labels_train[n]
target = encode_yolo_targets([boxes], [labels], S, C)[0]  # (S, S, 5 + C)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
show_image(axes[0], image, "sliding windows: a classifier at every position and scale")
for size, colour in ((16, "yellow"), (24, "orange"), (32, "magenta")):
    for k in range(0, 64 - size + 1, 16):  # every 4th window of a row, so the figure stays readable
        draw_box(axes[0], np.array([k, 4, k + size, 4 + size]) / 64, colour, linewidth=1)
axes[0].text(
    0.02,
    0.97,
    f"{sum(windows.values())} windows (stride 4, 3 sizes);\nshown: every 4th of one row",
    color="white",
    fontsize=9,
    va="bottom",
)
show_image(axes[1], image, f"YOLO: an {S} x {S} grid, one network run")
for i in range(S):
    for j in range(S):
        if target[i, j, 4] == 1:  # a responsible cell
            axes[1].add_patch(Rectangle((j / S, i / S), 1 / S, 1 / S, color="white", alpha=0.35))
            x, y, w, h = target[i, j, :4]
            label = int(np.argmax(target[i, j, 5:]))
            axes[1].text(
                j / S + 0.01,
                (i + 1) / S - 0.01,
                f"cell ({i},{j})\nx={x:.2f} y={y:.2f}\nw={w:.2f} h={h:.2f}",
                fontsize=7,
                color="black",
                va="bottom",
            )
            axes[1].plot((j + x) / S, (i + y) / S, "o", color=COLOURS[label])
for k in range(1, S):
    axes[1].axhline(k / S, color="white", linewidth=1)
    axes[1].axvline(k / S, color="white", linewidth=1)
for box, label in zip(boxes, labels):
    draw_box(axes[1], box, COLOURS[label], CLASSES[label], linewidth=2)
fig.tight_layout()
save(fig, "10_sliding_windows_vs_grid.png")
print(f"target of image {n}: objects in cells {[tuple(c) for c in np.argwhere(target[..., 4] == 1).tolist()]}")

# %% [markdown]
# ## 3. Intersection over union
# IoU compares two boxes by the area they share over the area they cover together: 1 for
# the same box, 0 for boxes that do not overlap. The loss uses it twice: to choose, in a
# responsible cell, which of the B boxes answers for the object (the one of highest IoU),
# and as that box's confidence target. mAP uses it to decide whether a detection found an
# object.


# %%
def area(box):
    """The area of a box (x1, y1, x2, y2)."""
    return (box[2] - box[0]) * (box[3] - box[1])


a, b = np.array([0.15, 0.20, 0.60, 0.70]), np.array([0.35, 0.40, 0.85, 0.80])
inter = np.array([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])  # A & B
by_hand = area(inter) / (area(a) + area(b) - area(inter))
iou = box_iou(a[None], b[None])[0, 0]
print(
    f"IoU by hand: {area(inter):.4f} / ({area(a):.4f} + {area(b):.4f} - {area(inter):.4f}) = {by_hand:.4f}; "
    f"box_iou: {iou:.4f}: as a detection of A, B would be a miss at the IoU >= 0.5 of mAP@0.5"
)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
for ax, title in zip(axes, ("boxes A and B", "intersection A & B", "union A | B")):
    ax.set(xlim=(0, 1), ylim=(1, 0), aspect="equal", title=title)
    ax.set_xticks([])
    ax.set_yticks([])
for ax in axes:
    draw_box(ax, a, "tab:blue", "A", fontsize=11, linewidth=2)
    draw_box(ax, b, "tab:orange", "B", fontsize=11, linewidth=2)
axes[1].add_patch(Rectangle(inter[:2], *(inter[2:] - inter[:2]), color="tab:purple", alpha=0.5, zorder=0))
axes[1].text(0.5, 0.95, f"area {area(inter):.4f}", ha="center")
for box in (a, b):
    axes[2].add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), color="lightgray", linewidth=0, zorder=0))
axes[2].text(0.5, 0.95, f"area {area(a) + area(b) - area(inter):.4f}", ha="center")
fig.suptitle(f"IoU(A, B) = area(A & B) / area(A | B) = {iou:.3f}")
fig.tight_layout()
save(fig, "10_iou.png")

# %% [markdown]
# ## 4. A small YOLO
# As in the paper: a convolutional backbone (here 4 blocks of 3 x 3 convolution, batch
# norm, leaky ReLU with slope 0.1 and 2 x 2 max pooling: 64 -> 4 pixels) and a fully
# connected head whose S * S * (5B + C) = 208 outputs are read as the S x S x (5B + C)
# tensor. Because the head is fully connected, every cell's prediction sees the whole
# image (YOLO "reasons globally"). The paper's S = 7 was for 448-pixel images;
# here the shapes are 9 to 26 pixels wide, and S = 4 cells of 16 pixels are enough: two
# centres seldom fall in one cell (YOLO v1 can only keep one of them; see the count below).
#
# The output activation. The paper's last layer is linear, and `nn.YOLOLoss` accepts
# raw linear outputs: the network predicts sqrt_w, sqrt_h and the width is sqrt_w^2, so
# no square root of a (possibly negative) prediction is ever taken. But every target lies
# in [0, 1]: the offsets x, y, the square roots of the sizes (the widest shape is 0.41 of
# the image, root 0.64), the confidence target (an IoU) and the one-hot classes. A
# sigmoid puts the outputs in that range from the first step, all near 0.5, whereas a
# random linear head starts around 0, far from the coordinate targets, and spends its
# first epochs pulling them into range. Measured on these shapes (same network, Adam at a
# constant 1e-3, 3000 training images, mAP@0.5 on 500 others): 0.68 after 5 epochs and
# 0.86 after 10 with the linear head, 0.81 and 0.92 with the sigmoid. The sigmoid's known
# cost: it multiplies the squared error's gradient by s (1 - s), which vanishes as s nears
# 0 or 1, so the confidences of empty cells creep towards 0 slowly. That does no harm
# here: a detection only has to score above the others. So the head ends with
# `nn.Sigmoid()`, and the scores $\hat C \cdot \hat p(c)$ lie in (0, 1).

# %%
minidl.seed(args.seed)


def block(c_in, c_out):
    return [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(negative_slope=0.1),
        nn.MaxPool2d(2),
    ]


model = nn.Sequential(
    *block(3, 16),
    *block(16, 32),
    *block(32, 64),
    *block(64, 64),  # (N, 64, 4, 4)
    nn.Flatten(),
    nn.Linear(64 * 4 * 4, 256),
    nn.LeakyReLU(negative_slope=0.1),
    nn.Linear(256, S * S * (5 * B + C)),
    nn.Sigmoid(),
)  # (N, 208), in (0, 1)
loss_fn = nn.YOLOLoss(S, B, C, lambda_coord=5.0, lambda_noobj=0.5)
n_params = sum(p.data.size for p in model.parameters())
print(model)
print(
    f"{n_params} parameters; output {predict(model, x_train[:2]).shape} "
    f"-> YOLOLoss reads it as (N, {S}, {S}, {5 * B + C})"
)

# %% [markdown]
# ## 5. Training
# The targets are (N, S, S, 5 + C) float arrays, so `fit` trains on them like any other
# loss layer (it reports no accuracy: the targets are not class labels). Adam, its learning
# rate falling from 1e-3 to 0 along a cosine over the epochs: large steps first, small
# steps at the end to settle the boxes.

# %%
y_train = encode_yolo_targets(boxes_train, labels_train, S, C)
y_val = encode_yolo_targets(boxes_val, labels_val, S, C)
print(f"objects kept in the targets: {int(y_train[..., 4].sum())} of {n_objects} (YOLO v1 keeps one object per cell)")
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
train_loss, val_loss = history.train_loss, history.val_loss
loss_fn(predict(model, x_val), y_val)  # the validation loss once more, to read its four parts
print(
    f"trained {epochs} epochs in {train_time:.0f} s; final loss: train {train_loss[-1]:.4f}, "
    f"validation {val_loss[-1]:.4f} = " + " + ".join(f"{v:.4f} ({k})" for k, v in loss_fn.terms.items())
)

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(range(1, len(train_loss) + 1), train_loss, "o-", label="train")
ax.plot(range(1, len(val_loss) + 1), val_loss, "s--", label="validation")
ax.set(xlabel="epoch", ylabel="YOLO loss", yscale="log", title="YOLO v1 on the shapes (Adam, cosine lr)")
ax.legend()
fig.tight_layout()
save(fig, "10_training.png")

# %% [markdown]
# ## 6. From the raw output to detections
# `decode_yolo` turns each of the S * S * B boxes into image coordinates with the score
# $\hat C \cdot \hat p(c)$ of its cell's best class and keeps those above a threshold. In a
# responsible cell the responsible box learns a high confidence; the other box is pushed
# towards 0, but only by the weak no-object term ($\lambda_{noobj} = 0.5$, and a sigmoid
# whose gradient fades near 0), so it keeps a smaller score, and neighbouring cells may
# claim the same object too: the raw boxes come in near-duplicates. Non-maximum
# suppression keeps the best-scored box and drops every other box of the same class whose
# IoU with it is above 0.5 (the VOC algorithm), class by class.

# %%
infer_start = time.perf_counter()
pred_test = predict(model, x_test)  # (n_test, 208), eval mode
raw = decode_yolo(pred_test, S, B, C, conf_threshold=0.05)  # every box scoring above 0.05
kept = [nms_per_class(d, iou_threshold=0.5) for d in raw]  # nms, class by class
images_per_second = n_test / (time.perf_counter() - infer_start)
targets = [{"boxes": b, "labels": l} for b, l in zip(boxes_test, labels_test)]
for threshold in (0.05, 0.3):
    print(
        f"test images: {sum(np.sum(d['scores'] > threshold) for d in raw)} raw boxes with a score above "
        f"{threshold}, {sum(np.sum(d['scores'] > threshold) for d in kept)} after NMS, "
        f"for {sum(len(t['boxes']) for t in targets)} objects"
    )

shown = range(min(4, n_test))
fig, axes = plt.subplots(len(shown), 3, figsize=(9, 3 * len(shown)), squeeze=False)
for row, n in enumerate(shown):
    for col, (what, d) in enumerate((("raw boxes", raw[n]), ("after NMS", kept[n]))):
        show_image(axes[row, col], x_test[n], f"{what}: {len(d['scores'])} with score > 0.05")
        for box, score, label in zip(d["boxes"], d["scores"], d["labels"]):  # fainter when less sure
            draw_box(
                axes[row, col],
                box,
                COLOURS[label],
                f"{CLASSES[label]} {score:.2f}" if score > 0.3 else None,
                linewidth=2 if score > 0.3 else 1,
                alpha=float(np.clip(score, 0.15, 1.0)),
            )
    show_image(axes[row, 2], x_test[n], "ground truth")
    for box, label in zip(boxes_test[n], labels_test[n]):
        draw_box(axes[row, 2], box, COLOURS[label], CLASSES[label], linewidth=2)
fig.tight_layout()
save(fig, "10_detections.png")

# %% [markdown]
# ## 7. Mean average precision on held-out images
# For each class, the detections of all test images are taken by descending score; each
# is a true positive when it overlaps a not-yet-matched object of its class with
# IoU >= 0.5, a false positive otherwise (a second box on an object already found is a
# false positive). The area under the resulting precision-recall curve is the class's
# average precision (PASCAL VOC, all points); mAP is its mean over the classes. At
# IoU >= 0.75 the boxes must also be tight.
#
# Compare the mAP with and without NMS: here they hardly differ. The loss already teaches
# one box per object (in a responsible cell, the box that is not responsible is pushed to
# confidence 0 by the no-object term), so duplicates mostly score low and rank after the
# true positives, where a false positive no longer lowers the interpolated precision. What
# NMS changes is the list of detections one keeps at a working threshold (the counts above
# 0.3, and the figure).

# %%
map50 = mean_average_precision(kept, targets, iou_threshold=0.5)
map50_raw = mean_average_precision(raw, targets, iou_threshold=0.5)
map75 = mean_average_precision(kept, targets, iou_threshold=0.75)
per_class = average_precision_per_class(kept, targets, iou_threshold=0.5)
print("AP@0.5 per class: " + ", ".join(f"{CLASSES[c]} {ap:.3f}" for c, ap in per_class.items()))
print(f"mAP@0.5 on {n_test} held-out images: {map50:.4f} (without NMS {map50_raw:.4f}); mAP@0.75 {map75:.4f}")
print(
    f"comparison row (tutorials 14-16): YOLO v1 | mAP@0.5 {map50:.3f} | mAP@0.75 {map75:.3f} | "
    f"training {train_time:.0f} s | {images_per_second:.0f} images/s (network, decoding and NMS)"
)
wall = time.perf_counter() - start
print(f"seed {args.seed}, wall time {wall:.0f} s ({wall / 60:.1f} min), of which training {train_time:.0f} s")
headline("map50", map50)
