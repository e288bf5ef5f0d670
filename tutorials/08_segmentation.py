# %% [markdown]
# # Tutorial 08: semantic segmentation, a class for every pixel: an FCN and a U-Net
#
# Semantic segmentation is pixel classification: the network outputs $K$ class scores for
# every pixel, $z[n, k, h, w]$ of shape (N, K, H, W), and the loss is the cross-entropy of
# each pixel, averaged over all $N H W$ of them (`nn.SoftmaxCrossEntropy` takes
# (N, K, H, W) logits with (N, H, W) labels $t$):
#
# $$L = \frac{1}{N H W} \sum_{n, h, w} -\log \frac{e^{z[n, t_{nhw}, h, w]}}{\sum_k e^{z[n, k, h, w]}} .$$
#
# With class weights $\omega_k$ (to stop a dominant background from drowning the small
# classes) each pixel's term is multiplied by $\omega_{t}$ and the sum is divided by
# $\sum \omega_{t}$ instead of $N H W$ (PyTorch's weighted mean). A prediction is scored
# per class by its intersection over union, and the mean over the classes:
#
# $$\mathrm{IoU}_k = \frac{|\{\text{pixels predicted } k\} \cap \{\text{pixels of class } k\}|}
#   {|\{\text{pixels predicted } k\} \cup \{\text{pixels of class } k\}|}, \qquad
#   \mathrm{mIoU} = \frac1K \sum_k \mathrm{IoU}_k .$$
# Convolutions and pooling shrink the image; to answer for every
# pixel the network must grow it back, with transposed convolutions (tutorial 07).
#
# This tutorial:
# 1. draws the synthetic shapes (circles, squares, triangles on a noisy background) and
#    their masks, 4 classes; counts how unbalanced the classes are;
# 2. builds the simplest fully convolutional network (FCN): convolutions down to
#    8x8, a 1x1 convolution to the 4 class scores, one transposed convolution back to 32x32;
# 3. builds a U-Net: the same encoder, a decoder that grows the maps back step by step, and
#    skip connections (`nn.Concat`) that hand the decoder the encoder's full-resolution
#    features at each size;
# 4. trains both (and the FCN once more with class weights for the unbalanced background);
# 5. scores them on held-out images: pixel accuracy, IoU per class, mean IoU; plots the
#    predicted masks next to the truth.
#
# Everything runs on 2 CPU cores in a few minutes (the wall time is printed at the end).
#
# Run: `python tutorials/08_segmentation.py [--quick] [--out outputs]`


# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

import minidl
from minidl import metrics, nn, optim
from minidl.data import make_shapes_segmentation
from minidl.train import fit, predict
from minidl.tutorial import headline, save, setup

args = setup("Segmentation: FCN and U-Net")
SEED = args.seed
start = time.perf_counter()


# %% [markdown]
# ## 1. The data: images and their masks
# `make_shapes_segmentation` draws 32x32 RGB images with 1 to 4 shapes that may overlap,
# and a mask that labels every pixel with the class visible there: 0 background, 1 circle,
# 2 square, 3 triangle. The images are drawn from a seeded generator, one after the other:
# we draw one stream and cut it into training, validation (to watch the training) and
# test images (scored once, at the end). No test image is ever trained on.

# %%
CLASSES = ("background", "circle", "square", "triangle")
K = len(CLASSES)
n_train, n_val, n_test, epochs_fcn, epochs_unet = 2000, 200, 300, 10, 15
if args.quick:
    n_train, n_val, n_test, epochs_fcn, epochs_unet = 256, 16, 32, 2, 3

images, masks = make_shapes_segmentation(n_train + n_val + n_test, size=32, seed=SEED)
x_train, y_train = images[:n_train], masks[:n_train]
x_val, y_val = images[n_train : n_train + n_val], masks[n_train : n_train + n_val]
x_test, y_test = images[n_train + n_val :], masks[n_train + n_val :]
print(f"images {images.shape} {images.dtype}, masks {masks.shape} {masks.dtype}")
print(f"{n_train} training, {n_val} validation, {n_test} test images (seed {SEED})")

frequency = np.bincount(y_train.ravel(), minlength=K) / y_train.size
for name, f in zip(CLASSES, frequency):
    print(f"  {name:10s} {100 * f:5.1f} % of the training pixels")
assert frequency[0] == frequency.max(), "the background is the largest class"

# %% [markdown]
# A network that answers "background" everywhere is already right on ~80 % of the
# pixels: pixel accuracy flatters. The IoU of class k, TP / (TP + FP + FN), counts the
# pixels of the predicted region and of the true region that disagree, and the mean IoU
# weighs the four classes alike; it is the score segmentation reports.

# %%
always_background = np.zeros_like(y_test)
print(
    f"predicting 'background' everywhere: pixel accuracy "
    f"{metrics.pixel_accuracy(y_test, always_background):.3f}, "
    f"mean IoU {metrics.mean_iou(y_test, always_background, K):.3f}"
)

MASK_COLOURS = ListedColormap(["#202020", "#e41a1c", "#377eb8", "#4daf4a"])


def show_mask(ax, mask, title=None):
    ax.imshow(mask, cmap=MASK_COLOURS, vmin=0, vmax=K - 1, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    if title:
        ax.set_title(title, fontsize=9)


# %% [markdown]
# ## 2. A fully convolutional network (FCN)
# The simplest design: convolutions (here Conv-BatchNorm-ReLU blocks, and two 2x2
# max-pools) extract features at 1/4 of the resolution; a 1x1 convolution turns the 64
# feature channels into K = 4 class scores at each of the 8x8 positions; ONE transposed
# convolution with stride 4 grows the 8x8 scores back to 32x32:
# OH = (8 - 1) * 4 - 2 * 2 + 8 = 32. Everything is a convolution: no Linear layer, so the
# network works on images of any size (a multiple of 4).

# %%
WIDTH = 16  # channels of the first block; doubled at each halving of the resolution


def block(c_in, c_out):
    """3x3 convolution (the size is kept by padding 1), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


def make_fcn(c=WIDTH):
    return nn.Sequential(
        block(3, c),
        nn.MaxPool2d(2),  # (N, c, 32, 32) -> (N, c, 16, 16)
        block(c, 2 * c),
        nn.MaxPool2d(2),  # (N, 2c, 16, 16) -> (N, 2c, 8, 8)
        block(2 * c, 4 * c),  # (N, 4c, 8, 8)
        nn.Conv2d(4 * c, K, kernel_size=1),  # (N, K, 8, 8): class scores at 1/4 resolution
        nn.ConvTranspose2d(K, K, kernel_size=8, stride=4, padding=2),  # (N, K, 32, 32)
    )


# %% [markdown]
# ## 3. A U-Net
# The FCN must rebuild a 32x32 mask from 8x8 scores: edges and corners are lost in the
# bottleneck. The U-Net decodes step by step, 8 -> 16 -> 32, and at each size
# concatenates the ENCODER's features of that size to the decoder's (the skip). In minidl
# the skip is `nn.Concat(inner)`: y = [x ; inner(x)] along the channels, so a U-Net is
# nested Concats, each wrapping everything below its resolution:
#
#     x (32x32) -> block ------------------------------ concat -> block -> 1x1 conv
#                    \-> pool -> block (16x16) -- concat -> block -> up /
#                                 \-> pool -> block (8x8) -> up /
#
# "up" is a ConvTranspose2d with kernel 2 and stride 2: each input pixel paints its own
# 2x2 block, OH = (H - 1) * 2 + 2 = 2 H.


# %%
def make_unet(c=WIDTH):
    return nn.Sequential(
        block(3, c),  # (N, c, 32, 32): encoder, full size
        nn.Concat(
            nn.Sequential(  # skip at 32x32: [x ; inner(x)]
                nn.MaxPool2d(2),
                block(c, 2 * c),  # (N, 2c, 16, 16): encoder, half size
                nn.Concat(
                    nn.Sequential(  # skip at 16x16
                        nn.MaxPool2d(2),
                        block(2 * c, 4 * c),  # (N, 4c, 8, 8): the bottleneck
                        nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2),  # up: (N, 2c, 16, 16)
                    )
                ),  # concat: (N, 2c + 2c, 16, 16)
                block(4 * c, 2 * c),  # decoder at 16x16
                nn.ConvTranspose2d(2 * c, c, 2, stride=2),  # up: (N, c, 32, 32)
            )
        ),  # concat: (N, c + c, 32, 32)
        block(2 * c, c),  # decoder at 32x32
        nn.Conv2d(c, K, kernel_size=1),  # (N, K, 32, 32): class scores
    )


for name, make in (("FCN", make_fcn), ("U-Net", make_unet)):
    model = make()
    scores = model(x_train[:2])
    n_params = sum(p.size for p in model.parameters())
    print(f"{name:6s}: {n_params:6,} parameters, (2, 3, 32, 32) -> {scores.shape}")
    assert scores.shape == (2, K, 32, 32), "one score per class for every pixel"

# %% [markdown]
# ## 4. Training
# Adam, mini-batches of 32 images, and a learning rate that decays along a half cosine
# from 3e-3 to 0 over the epochs (`optim.CosineAnnealingLR`): the last epochs fine-tune
# instead of jumping around. After each epoch we predict the validation masks (the class of highest score at every
# pixel, `argmax` over axis 1) and record their mean IoU.
#
# The background holds ~80 % of the pixels. A common remedy for unbalanced classes is to
# weigh each pixel's loss by its class: `SoftmaxCrossEntropy(weight=w)` with w_k
# inversely proportional to the frequency of class k (scaled so that the weights average
# to 1), which gives the shapes' pixels more say. We train the FCN with and without.

# %%
LR = 3e-3


def train(name, model, loss_fn, epochs):
    """Train ``model`` with Adam and a cosine learning rate; return the validation mIoU per epoch."""
    optimizer = optim.Adam(model.parameters(), lr=LR)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=epochs)  # half a cosine, LR -> 0
    val_miou, t0 = [], time.perf_counter()
    for epoch in range(epochs):  # one epoch per call of fit, to score the validation masks after each
        lr = optimizer.lr
        history = fit(
            model,
            loss_fn,
            optimizer,
            (x_train, y_train),
            epochs=1,
            batch_size=32,
            seed=SEED + epoch,
            verbose=False,
            scheduler=scheduler,
        )
        pred = predict(model, x_val).argmax(axis=1)
        val_miou.append(metrics.mean_iou(y_val, pred, K))
        print(
            f"  {name} epoch {epoch + 1:2d}/{epochs}: lr {lr:.1e}, train loss "
            f"{history.train_loss[-1]:.4f}, validation mean IoU {val_miou[-1]:.4f}  "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    assert np.isfinite(history.train_loss[-1])
    return val_miou, time.perf_counter() - t0


weight = 1.0 / frequency
weight = weight / weight.mean()
print("class weights:", ", ".join(f"{c} {w:.3f}" for c, w in zip(CLASSES, weight)))

experiments = {
    "FCN": (make_fcn, nn.SoftmaxCrossEntropy(), epochs_fcn),
    "FCN, class weights": (make_fcn, nn.SoftmaxCrossEntropy(weight=weight), epochs_fcn),
    "U-Net": (make_unet, nn.SoftmaxCrossEntropy(), epochs_unet),
}
models, curves, train_time = {}, {}, {}
for name, (make, loss_fn, epochs) in experiments.items():
    minidl.seed(SEED)  # the same initial weights for both FCNs
    models[name] = make()
    curves[name], train_time[name] = train(name, models[name], loss_fn, epochs)

# %% [markdown]
# ## 5. Scores on the held-out test images
# All test masks are predicted, and the metrics read off one confusion matrix over all
# their pixels (`minidl.metrics`).

# %%
predictions = {name: predict(model, x_test).argmax(axis=1) for name, model in models.items()}
header = (
    f"{'model':20s} {'pixel acc':>9s} {'mean IoU':>9s}  " + " ".join(f"{c:>10s}" for c in CLASSES) + "   train time"
)
print(f"\nheld-out test images ({n_test}), IoU per class:")
print(header)
print("-" * len(header))
results = {}
for name, pred in predictions.items():
    acc = metrics.pixel_accuracy(y_test, pred)
    miou = metrics.mean_iou(y_test, pred, K)
    iou = metrics.per_class_iou(y_test, pred, K)
    results[name] = (acc, miou)
    assert 0 <= acc <= 1 and 0 <= miou <= 1
    print(
        f"{name:20s} {acc:9.4f} {miou:9.4f}  " + " ".join(f"{v:10.4f}" for v in iou) + f"   {train_time[name]:6.0f} s"
    )

for name in ("FCN", "U-Net"):
    M = metrics.confusion_matrix(y_test, predictions[name], K)
    print(f"\n{name}: confusion matrix (rows: truth, columns: prediction), in % of each true class")
    print(" " * 11 + "".join(f"{c:>11s}" for c in CLASSES))
    for c, row in zip(CLASSES, M):
        print(f"{c:>11s}" + "".join(f"{v:11.2f}" for v in 100 * row / max(row.sum(), 1)))

# %% [markdown]
# What to read in the table (full run):
# - The U-Net beats the FCN, most on the shapes' IoU: the skips bring back the
#   full-resolution edges that the FCN must guess from 8x8 scores. The FCN loses shape
#   pixels to the background along the borders; the U-Net hardly ever confuses a shape
#   with the background, its errors are one shape taken for another (mostly where two
#   shapes overlap).
# - The background is not the hard part here, it is merely the LARGE part: every channel
#   of a background pixel is at most 0.35 and of a shape pixel at least 0.5 (see
#   `minidl/data/shapes.py`), so the U-Net's background IoU is (almost) exactly 1.
#   Class weights push the FCN to call uncertain pixels a shape, which costs background
#   pixels around every shape: weighting is a remedy for rare classes that are hard to
#   find, and the two FCN rows say whether it paid here.

# %%
change = results["FCN, class weights"][1] - results["FCN"][1]
print(
    f"\nclass weights {'helped' if change > 0 else 'did not help'} the FCN: mean IoU "
    f"{results['FCN'][1]:.4f} -> {results['FCN, class weights'][1]:.4f} ({change:+.4f}), pixel accuracy "
    f"{results['FCN'][0]:.4f} -> {results['FCN, class weights'][0]:.4f}"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, curve in curves.items():
    axes[0].plot(range(1, len(curve) + 1), curve, "o-", label=name)
axes[0].set(xlabel="epoch", ylabel="validation mean IoU", title="Mean IoU during training")
axes[0].grid(True, alpha=0.3)
axes[0].legend()
names = list(results)
axes[1].bar(np.arange(len(names)) - 0.2, [results[n][0] for n in names], 0.4, label="pixel accuracy")
axes[1].bar(np.arange(len(names)) + 0.2, [results[n][1] for n in names], 0.4, label="mean IoU")
axes[1].set_xticks(range(len(names)), names, fontsize=8)
axes[1].set(ylim=(0.5, 1.0), title=f"Held-out test images ({n_test})")
axes[1].legend(loc="lower right")
fig.tight_layout()
save(fig, "08_segmentation_scores.png")

# %% [markdown]
# ## 6. The masks
# Each column is a test image: the image, the true mask, the FCN's and the U-Net's
# predictions. The FCN's masks are blobs with soft corners (a stride-4 upsampling of
# 8x8 scores); the U-Net's follow the edges.

# %%
shown = np.arange(min(8, n_test))
rows = [("image", None), ("truth", y_test), ("FCN", predictions["FCN"]), ("U-Net", predictions["U-Net"])]
fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.6 * len(shown), 1.7 * len(rows)), squeeze=False)
for j, i in enumerate(shown):
    for r, (label, m) in enumerate(rows):
        ax = axes[r, j]
        if m is None:
            ax.imshow(x_test[i].transpose(1, 2, 0))
            ax.set(xticks=[], yticks=[])
        else:
            show_mask(ax, m[i])
        if j == 0:
            ax.set_ylabel(label)
fig.legend(
    handles=[Patch(color=MASK_COLOURS(k), label=c) for k, c in enumerate(CLASSES)],
    loc="lower center",
    ncol=K,
    bbox_to_anchor=(0.5, -0.02),
)
fig.suptitle("Test images, true masks and predicted masks")
fig.tight_layout(rect=(0, 0.04, 1, 1))
save(fig, "08_segmentation_masks.png")

# %% [markdown]
# ## 7. The bill
# The seed, the wall time of the whole script, and the number this tutorial is about: the
# U-Net's mean IoU on the held-out images. The full run (seed 0) reaches at least 0.90;
# the --quick run trains one epoch on 64 images and is only a smoke test.

# %%
wall = time.perf_counter() - start
unet_miou = results["U-Net"][1]
print(
    f"\nseed {SEED}: FCN mean IoU {results['FCN'][1]:.4f}, U-Net mean IoU {unet_miou:.4f}; "
    f"wall time {wall:.0f} s ({wall / 60:.1f} min)"
)
headline("unet_mean_iou", unet_miou)
