"""``python -m minidl.demo``: train a small convolutional network on handwritten digits.

Loads scikit-learn's 8x8 digits, splits them 70/15/15 (stratified, seed 0), adds copies
of the training images shifted by one pixel (a CNN should not care where a stroke is, and
the copies teach it so), trains a CNN with batch norm with Adam and a cosine learning-rate
schedule, shows a progress bar, prints the test accuracy and saves three figures: the
learning curves, the first layer's filters and the test confusion matrix.

``--quick`` runs one short epoch (a smoke test); ``--out`` picks the folder for the figures.

On a first run Numba compiles minidl's kernels before the first batch (the progress bar
waits at 0 % for several seconds, and the demo says so); it caches them, so later runs
start at once. In the first epoch the training loss can sit above the validation loss: it
is the mean over the epoch's batches, most seen with the early, worse weights and with
dropout on, while the validation loss is measured once, at the end of the epoch, with the
trained weights and dropout off.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import load_digits, train_val_test_split
from minidl.metrics import confusion_matrix
from minidl.train import evaluate, fit, predict_classes
from minidl.tutorial import QUICK_NOTICE


def build_model():
    """Conv-BN-ReLU x2, max pool, Conv-BN-ReLU, max pool, dropout, linear: 8x8 -> 10 scores."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 32 x 2 x 2
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32 * 2 * 2, 10),
    )


def shift(x, dy, dx):
    """Images moved by (dy, dx) pixels, with zeros coming in at the border."""
    H, W = x.shape[2:]
    out = np.zeros_like(x)
    out[:, :, max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = x[
        :, :, max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)
    ]
    return out


def with_shifted_copies(x, y):
    """The images plus their copies shifted one pixel up, down, left and right (5x the data)."""
    moves = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
    return np.concatenate([shift(x, dy, dx) for dy, dx in moves]), np.concatenate([y] * len(moves))


def kernels_cached():
    """True when Numba's cache already holds minidl's compiled convolution (not a first run)."""
    ops = Path(__file__).parent / "ops"
    root = Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR") else ops / "__pycache__"
    return root.exists() and any(root.rglob("conv2d.*.nbi"))


def save_figures(model, history, test, out):
    """Learning curves, the first layer's 16 filters and the test confusion matrix."""
    import matplotlib  # imported here, after training: pyplot alone takes ~1 s to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out / "demo_learning_curves.png", out / "demo_filters.png", out / "demo_confusion.png"]
    history.plot(paths[0])
    fig, axes = plt.subplots(2, 8, figsize=(8.8, 2.3))
    filters = model[0].weight.data[:, 0]
    limit = np.abs(filters).max()  # one scale for all 16, centred on 0: colours compare across filters
    for ax, w in zip(axes.ravel(), filters):
        image = ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="weight")
    fig.suptitle("first-layer filters (3x3), one colour scale")
    fig.savefig(paths[1], dpi=100)
    cm = confusion_matrix(test[1], predict_classes(model, test[0]), 10)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, v, ha="center", va="center", fontsize=8, color="white" if v > cm.max() / 2 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title="test confusion matrix")
    fig.savefig(paths[2], dpi=100)
    plt.close("all")
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short epoch, a smoke test")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs", help="folder for the figures (default: outputs)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x, y = load_digits()
    train, val, test = train_val_test_split(x, y, val=0.15, test=0.15, seed=args.seed)
    train = with_shifted_copies(*train)
    epochs = args.epochs
    if args.quick:
        print(QUICK_NOTICE)
        epochs, train = 1, (train[0][:500], train[1][:500])
    print(
        f"digits: {len(train[0])} training images (with shifted copies), {len(val[0])} validation, "
        f"{len(test[0])} test, of shape {x.shape[1:]}"
    )

    if not kernels_cached():  # before summary(), whose forward pass is the first to compile
        print("first run: Numba is compiling minidl's kernels, for a few seconds (once: they are cached)")
    minidl.seed(args.seed)
    model = build_model()
    model.summary(x.shape[1:])
    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    schedule = optim.CosineAnnealingLR(optimizer, T_max=epochs)
    start = time.perf_counter()
    history = fit(
        model, loss_fn, optimizer, train, val_data=val, epochs=epochs, batch_size=32, seed=args.seed, scheduler=schedule
    )
    seconds = time.perf_counter() - start

    result = evaluate(model, loss_fn, test)
    print(
        f"test accuracy {result['accuracy']:.4f} (test loss {result['loss']:.4f}) "
        f"after {epochs} epochs in {seconds:.1f} s"
    )
    if history.train_loss[0] > history.val_loss[0]:
        print(
            "(epoch 1's training loss is above its validation loss: it averages the epoch's batches, seen with "
            "earlier weights and dropout on; validation is measured after the epoch, dropout off)"
        )
    for path in save_figures(model, history, test, out):
        print(f"saved {path}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
