"""``python -m minidl.demo``: train a network on the handwritten digits, end to end.

Loads scikit-learn's 8x8 digits, splits them 70/15/15 (stratified, seed 0), trains with
Adam and a progress bar, prints the test accuracy and saves the learning curves as a PNG.
``--quick`` runs two epochs (a smoke test); ``--out`` picks the folder for the figures.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import load_digits, train_val_test_split
from minidl.train import evaluate, fit


def build_model():
    """The demo network: an MLP over the 64 pixels."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two epochs, a smoke test")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs", help="folder for the figures (default: outputs)")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x, y = load_digits()
    train, val, test = train_val_test_split(x, y, val=0.15, test=0.15, seed=args.seed)
    mean, std = train[0].mean(axis=0), train[0].std(axis=0) + 0.1
    train, val, test = [(((xs - mean) / std).astype(np.float32), ys) for xs, ys in (train, val, test)]
    print(f"digits: {len(train[0])} train / {len(val[0])} validation / {len(test[0])} test images of shape {x.shape[1:]}")

    minidl.seed(args.seed)
    model = build_model()
    model.summary(x.shape[1:])
    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    history = fit(model, loss_fn, optimizer, train, val_data=val, epochs=epochs, batch_size=32, seed=args.seed)
    seconds = time.perf_counter() - start

    result = evaluate(model, loss_fn, test)
    print(f"test accuracy {result['accuracy']:.4f} (test loss {result['loss']:.4f}) after {epochs} epochs in {seconds:.1f} s")
    curves = out / "demo_learning_curves.png"
    history.plot(curves)
    print(f"learning curves saved to {curves}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
