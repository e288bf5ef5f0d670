# %% [markdown]
# # Tutorial 12: data augmentation
#
# With few training images a network learns them by heart: its training accuracy climbs to
# 100 % while its validation accuracy stalls, and the gap between the two is overfitting.
# More data is the cure; when there is no more, **augmentation** makes new examples from
# the old ones by changes that keep the label: a shirt shifted by two pixels, mirrored,
# turned by ten degrees or seen through a little noise is still a shirt. Drawn afresh
# every epoch, the network never sees exactly the same image twice and must learn what is
# invariant. Formally, with a family of label-preserving transforms $T$, training
# minimises the expected loss over them rather than the loss on the fixed images:
#
# $$\min_\theta \; \frac{1}{N} \sum_{i=1}^{N} \mathbb{E}_{T}\,
#   \ell\big(f_\theta(T(x_i)),\, y_i\big)$$
#
# and each mini-batch step estimates it with one random $T$ per image.
#
# This tutorial draws each transform of `minidl.data.transforms` on one image, then trains
# the same CNN on 100 images per class of Fashion-MNIST with and without augmentation,
# three times each, and measures the gap and the test accuracy.
#
# Run: `python tutorials/12_augmentation.py [--quick] [--epochs 80] [--out outputs]`

# %%
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import transforms
from minidl.train import evaluate, fit
from minidl.tutorial import fashion_mnist, headline, save, setup

args = setup("Data augmentation", epochs=80)

# %% [markdown]
# ## The transforms, on one image
# Each works on a whole batch (N, C, H, W) and draws each image's own random numbers:
#
# - `RandomCrop(28, padding=3)`: pad with 3 zero pixels on every side, cut a 28x28 window
#   at a random position: a shift of up to 3 pixels each way.
# - `RandomHorizontalFlip(p=0.5)`: mirror left-right, half of the time.
# - `RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.85, 1.15))`: rotate, shift and
#   scale about the centre. Every output pixel $p$ asks where it comes from,
#   $p_{in} = c + \tfrac1s R(-\alpha)(p - c - t)$, and blends the four input pixels around
#   that point with bilinear weights $(1 - f_u)(1 - f_v)$, $f_u (1 - f_v)$, ... (the op
#   `minidl/ops/warp_affine.py`, a loop over output pixels).
# - `GaussianNoise(sigma=0.1)`: add $\mathcal N(0, 0.1^2)$ to every pixel, clip to [0, 1].
# - `Normalize(mean, std)`: not random: $(x - \mu_c) / \sigma_c$ per channel.

# %%
(x_all, y_all), (x_test, y_test), dataset, classes = fashion_mnist(
    None if not args.quick else 6000, 500 if args.quick else None
)
flip = dataset == "Fashion-MNIST"  # a mirrored shirt is a shirt; a mirrored 3 is no digit
augment = transforms.Compose(
    [transforms.RandomCrop(28, padding=2)] + ([transforms.RandomHorizontalFlip()] if flip else [])
)  # mild: shifts of up to 2 pixels and mirroring (strong rotations and zooms cost accuracy here)
shown = {
    "RandomCrop(28, padding=3)": transforms.RandomCrop(28, padding=3),
    "RandomHorizontalFlip()": transforms.RandomHorizontalFlip(),
    "RandomAffine(15, (0.1, 0.1), (0.85, 1.15))": transforms.RandomAffine(15, (0.1, 0.1), (0.85, 1.15)),
    "GaussianNoise(sigma=0.1)": transforms.GaussianNoise(sigma=0.1),
    "Normalize(0.29, 0.35): the values change, the picture not": transforms.Normalize(0.29, 0.35),
    "the training augmentation": augment,
}
image = x_all[np.flatnonzero(y_all == 9)[0]][None]  # one ankle boot (or one 9), as a batch of 1
rng = np.random.default_rng(1)  # (with seed 0 the five flips all come up "no": a 1-in-32 chance)
fig, axes = plt.subplots(len(shown), 6, figsize=(9, 1.6 * len(shown)))
for row, (name, t) in zip(axes, shown.items()):
    row[0].imshow(image[0, 0], cmap="gray_r", vmin=0, vmax=1)
    row[0].set_title("original", fontsize=8)
    for ax in row[1:]:
        ax.imshow(
            t(image, rng)[0, 0],
            cmap="gray_r",
            vmin=None if "Normalize" in name else 0,
            vmax=None if "Normalize" in name else 1,
        )
    row[1].set_title(name, fontsize=8, loc="left")
    for ax in row:
        ax.axis("off")
fig.suptitle("one image, five random draws of each transform", fontsize=10)
fig.tight_layout()
save(fig, "12_transforms.png")

# %% [markdown]
# ## A small training set
# 100 images per class (1000 in all), a validation set of 1000 other training images, and
# the test set (10000 images). The pixels are standardised with the small set's mean and
# spread *after* augmentation, as a last transform, so both runs see the same scale.

# %%
per_class = 10 if args.quick else 100
order = np.random.default_rng(0).permutation(len(x_all))
small = np.concatenate([order[y_all[order] == k][:per_class] for k in range(10)])
rest = np.setdiff1d(order, small)[: 200 if args.quick else 1000]
train, val = (x_all[small], y_all[small]), (x_all[rest], y_all[rest])
mean, std = float(train[0].mean()), float(train[0].std())
standardise = transforms.Normalize(mean, std)
val, test = [(standardise(xs), ys) for xs, ys in (val, (x_test, y_test))]
print(
    f"{dataset}: {len(train[0])} training images ({per_class} per class), {len(val[0])} validation, {len(test[0])} test"
)


def cnn():
    """LeNet-5's layout with batch norm: enough capacity to memorise 1000 images."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


# %% [markdown]
# ## With and without augmentation, three runs each
# The same network, optimizer (AdamW, cosine schedule) and epochs; the only difference is
# `fit(..., transform=...)`: the augmentation (then the standardisation) on every training
# batch, or the standardisation alone. Each run has its own seed for the weights, the order
# and the random transforms.

# %%
epochs = 2 if args.quick else args.epochs
seeds = [0] if args.quick else [0, 1, 2]
results = {"without": [], "with": []}
curves = {}
for seed in seeds:
    for label, transform in (("without", standardise), ("with", transforms.Compose([augment, standardise]))):
        minidl.seed(seed)
        model = cnn()
        opt = optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
        history = fit(
            model, nn.SoftmaxCrossEntropy(), opt, train, val, epochs=epochs, batch_size=50, seed=seed,
            verbose=False, scheduler=optim.CosineAnnealingLR(opt, T_max=epochs), transform=transform,
        )  # fmt: skip
        train_acc = evaluate(model, nn.SoftmaxCrossEntropy(), (standardise(train[0]), train[1]))["accuracy"]
        test_acc = evaluate(model, nn.SoftmaxCrossEntropy(), test)["accuracy"]
        results[label].append((train_acc, history.val_acc[-1], test_acc))
        curves.setdefault(label, history)
        print(
            f"seed {seed}, {label:7s} augmentation: train {train_acc:.4f}  validation {history.val_acc[-1]:.4f}"
            f"  gap {train_acc - history.val_acc[-1]:.4f}  test {test_acc:.4f}  ({sum(history.epoch_time):.0f} s)"
        )

# %% [markdown]
# ## What changed
# The training accuracy is measured at the end on the clean (un-augmented) training images,
# so that both runs are measured the same way. Without augmentation the network fits its
# 1000 images perfectly and stops learning (the loss on them goes to zero); with it, the
# images it trains on are never the same twice, its accuracy on the clean training images
# ends a little lower and the validation and test accuracies higher: the gap closes from
# both sides. Shifts of two pixels and mirroring are mild changes, and the gain is of that
# size; the fewer the training images, the more each variant is worth (try
# `per_class = 30`), and a transform that changes the label (a mirrored digit) would cost
# accuracy instead.

# %%
summary = {label: np.array(rows) for label, rows in results.items()}
for label, rows in summary.items():
    mean_, spread = rows.mean(axis=0), rows.std(axis=0)
    print(
        f"{label:7s} augmentation ({len(rows)} runs): train {mean_[0]:.4f}  validation {mean_[1]:.4f} "
        f"gap {np.mean(rows[:, 0] - rows[:, 1]):.4f}  test {mean_[2]:.4f} +- {spread[2]:.4f}"
    )
gap = {label: float(np.mean(rows[:, 0] - rows[:, 1])) for label, rows in summary.items()}
gain = float(summary["with"][:, 2].mean() - summary["without"][:, 2].mean())
print(f"augmentation: the gap goes from {gap['without']:.4f} to {gap['with']:.4f}; test accuracy {gain:+.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for label, style in (("without", "--"), ("with", "-")):
    h = curves[label]
    ep = np.arange(1, len(h) + 1)
    axes[0].plot(ep, h.train_acc, style, color="C0", label=f"train (its batches as trained on), {label}")
    axes[0].plot(ep, h.val_acc, style, color="C1", label=f"validation, {label}")
axes[0].set(xlabel="epoch", ylabel="accuracy", title=f"seed {seeds[0]}: learning curves")
axes[0].legend(fontsize=8)
axes[0].grid(alpha=0.3)
x_pos = np.arange(3)
for k, (label, rows) in enumerate(summary.items()):
    axes[1].bar(x_pos + 0.38 * k, rows.mean(axis=0), 0.36, yerr=rows.std(axis=0), label=f"{label} augmentation")
axes[1].set_xticks(x_pos + 0.19, ["train (clean)", "validation", "test"])
axes[1].set(ylim=(0.5, 1.02), ylabel="accuracy", title=f"{len(seeds)} runs each: mean and spread")
axes[1].legend(fontsize=8)
fig.tight_layout()
save(fig, "12_with_and_without.png")
headline("test_accuracy_without", float(summary["without"][:, 2].mean()))
headline("test_accuracy_with", float(summary["with"][:, 2].mean()))
