"""Tutorial 03: a multi-layer perceptron on real handwritten digits.

The course's good practice, with minidl doing the work:

1. split the data three ways: train (fit the weights), validation (choose the
   hyper-parameters and the epoch), test (touched once, at the end);
2. always compare with a simple baseline;
3. read the learning curves: the training loss must go down; the validation loss goes
   down, then up when the network starts to over-fit.

The network: 64 standardised pixels -> 256 -> 128 -> 10 class scores, ReLU and dropout
between, trained with Adam on the softmax cross-entropy. Three seeds, to see how much of
the result is luck. The seed quotes 0.977 test accuracy for scikit-learn's MLPClassifier
on the same data.

Run: python tutorials/03_mlp_digits.py [--quick] [--out outputs]
"""

# %%
import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import load_digits, train_val_test_split
from minidl.train import evaluate, fit

parser = argparse.ArgumentParser(description="MLP on the digits")
parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
parser.add_argument("--out", default="outputs", help="folder for the figures")
parser.add_argument("--epochs", type=int, default=60)
args, _ = parser.parse_known_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
epochs = 2 if args.quick else args.epochs
seeds = (0,) if args.quick else (0, 1, 2)

# %% [markdown]
# ## The data: 1797 8x8 digits
# Each seed draws its own stratified 70 / 15 / 15 split (and its own initial weights), so
# the spread over seeds shows how much a single split can flatter or hurt a model.

# %%
x, y = load_digits()
print(f"{len(x)} images of shape {x.shape[1:]}, pixel values in [{x.min()}, {x.max()}]")

fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for ax, image, label in zip(axes.ravel(), x, y):
    ax.imshow(image[0], cmap="gray_r")
    ax.set_title(str(label))
    ax.axis("off")
fig.savefig(out / "03_digits.png", dpi=100)


# %% [markdown]
# ## Standardise with the training statistics only
# Each pixel is centred and scaled by the mean and spread measured on the training images;
# validation and test images get the same transform. (Using their statistics too would leak
# information from the held-out data.) The +0.1 keeps always-blank border pixels finite.


# %%
def standardiser(x_train):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 0.1
    return lambda a: ((a - mean) / std).astype(np.float32)


# %% [markdown]
# ## The MLP
# Dropout (p = 0.2) after each hidden layer: in training it zeroes a random fifth of the
# units, so no unit can rely on another; in evaluation it does nothing.


# %%
def make_mlp():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 256),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 10),
    )


make_mlp().summary((1, 8, 8))

# %% [markdown]
# ## Train with three seeds; a baseline first
# The baseline predicts the most frequent training class. The test set is used once per
# seed, after training; the validation curve is what we would tune on.

# %%
loss_fn = nn.SoftmaxCrossEntropy()
results, histories, splits = [], [], []
for seed in seeds:
    train, val, test = train_val_test_split(x, y, val=0.15, test=0.15, seed=seed)
    splits.append((train, test))
    scale = standardiser(train[0])
    train, val, test = [(scale(xs), ys) for xs, ys in (train, val, test)]
    majority = np.bincount(train[1]).argmax()
    minidl.seed(seed)
    model = make_mlp()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    history = fit(model, loss_fn, opt, train, val_data=val, epochs=epochs, batch_size=32, seed=seed, verbose=False)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, loss_fn, test)["accuracy"]
    best = int(np.argmin(history.val_loss))
    print(
        f"seed {seed}: train {len(train[0])} / val {len(val[0])} / test {len(test[0])}; "
        f"baseline {np.mean(test[1] == majority):.3f}; MLP test accuracy {accuracy:.4f} "
        f"(lowest validation loss at epoch {best + 1}); {seconds:.1f} s for {epochs} epochs"
    )
    results.append(accuracy)
    histories.append(history)
print(
    f"mean test accuracy over seeds {list(seeds)}: {np.mean(results):.4f} (scikit-learn's MLPClassifier on the same splits: below)"
)

# %% [markdown]
# ## Learning curves
# Training loss keeps falling; validation loss flattens and would start to rise with more
# epochs: the best model is the one with the lowest validation loss.

# %%
fig = histories[0].plot(out / "03_learning_curves.png")
print("saved", out / "03_learning_curves.png")

# %% [markdown]
# ## The same splits with scikit-learn's MLPClassifier (the usual scikit-learn baseline)

# %%
if not args.quick:
    from sklearn.neural_network import MLPClassifier

    scores = []
    for seed, (train, test) in zip(seeds, splits):
        clf = MLPClassifier(hidden_layer_sizes=(64, 32, 16), activation="relu", max_iter=500, random_state=seed)
        clf.fit(train[0].reshape(len(train[0]), -1), train[1])
        scores.append(clf.score(test[0].reshape(len(test[0]), -1), test[1]))
    print(f"scikit-learn MLPClassifier on the same splits: {np.round(scores, 4).tolist()}, mean {np.mean(scores):.4f}")
