"""Tutorial 01: Rosenblatt's perceptron, and why XOR needs a hidden layer.

The perceptron learning rule (Rosenblatt, 1958): a neuron computes z = w^T x + b and fires
(y_hat = 1) when z > 0. For each training sample it updates

    w_j <- w_j + eta * (y_i - y_hat_i) * x_i(j)        b <- b + eta * (y_i - y_hat_i)

The rule only moves the weights when the neuron is wrong. On linearly separable data it
converges (Novikoff's theorem); on XOR it never can, because no line separates XOR.
An MLP with one hidden layer, trained by gradient descent with minidl, solves it.

Run: python tutorials/01_perceptron.py [--quick] [--out outputs]
"""

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim

parser = argparse.ArgumentParser(description="Perceptron and XOR")
parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
parser.add_argument("--out", default="outputs", help="folder for the figures")
args, _ = parser.parse_known_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
minidl.seed(1)

# %% [markdown]
# ## A linearly separable 2-D set
# Two Gaussian clouds; label 1 for the upper-right one.

# %%
rng = np.random.default_rng(0)
n = 50
x = np.vstack([rng.normal([-1.0, -1.0], 0.6, (n, 2)), rng.normal([1.5, 1.2], 0.6, (n, 2))])
y = np.repeat([0, 1], n)

# %% [markdown]
# ## Rosenblatt's learning rule, one sample at a time


# %%
def perceptron_epoch(w, b, x, y, eta):
    """One pass of the rule over the samples; returns the new w, b and the mistakes made."""
    mistakes = 0
    for xi, yi in zip(x, y):
        y_hat = 1 if w @ xi + b > 0 else 0
        w = w + eta * (yi - y_hat) * xi
        b = b + eta * (yi - y_hat)
        mistakes += int(y_hat != yi)
    return w, b, mistakes


w, b, eta = rng.normal(0, 0.01, 2), 0.0, 0.1
boundaries = [(w.copy(), b)]
for epoch in range(2 if args.quick else 20):
    w, b, mistakes = perceptron_epoch(w, b, x, y, eta)
    boundaries.append((w.copy(), b))
    print(f"epoch {epoch + 1:2d}: {mistakes} mistakes, w = {np.round(w, 3)}, b = {b:.3f}")
    if mistakes == 0:
        print("converged: every training point is on the right side of the line")
        break

# %% [markdown]
# The decision boundary w1 x1 + w2 x2 + b = 0, drawn after each epoch (lighter = earlier).

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(*x[y == 0].T, c="tab:blue", label="class 0")
ax.scatter(*x[y == 1].T, c="tab:red", label="class 1")
xs = np.linspace(-3, 3.5, 2)
for k, (wk, bk) in enumerate(boundaries):
    if abs(wk[1]) > 1e-12:
        ax.plot(xs, -(wk[0] * xs + bk) / wk[1], color="k", alpha=0.15 + 0.85 * k / max(1, len(boundaries) - 1))
ax.set(xlim=(-3, 3.5), ylim=(-3, 3.5), title="Perceptron boundary as it learns")
ax.legend()
fig.savefig(out / "01_perceptron_boundary.png", dpi=100)
print("saved", out / "01_perceptron_boundary.png")

# %% [markdown]
# ## XOR: the perceptron cannot
# The four points of XOR: no line puts (0,1) and (1,0) on one side and (0,0), (1,1) on the other.

# %%
x_xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y_xor = np.array([0, 1, 1, 0])
w, b = np.zeros(2), 0.0
for _epoch in range(100):
    w, b, mistakes = perceptron_epoch(w, b, x_xor, y_xor, eta=0.1)
print(f"perceptron on XOR after 100 epochs: still {mistakes} mistakes per epoch")

# %% [markdown]
# ## An MLP with one hidden layer does
# Two inputs -> 4 tanh units -> 2 class scores, trained by gradient descent on the
# softmax cross-entropy. The hidden layer bends the input space so that XOR becomes
# linearly separable for the last layer.

# %%
mlp = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
loss_fn = nn.SoftmaxCrossEntropy()
opt = optim.SGD(mlp.parameters(), lr=0.5, momentum=0.9)
for _step in range(50 if args.quick else 500):
    loss = loss_fn(mlp(x_xor), y_xor)
    opt.zero_grad()
    mlp.backward(loss_fn.backward())
    opt.step()
predicted = mlp(x_xor).argmax(axis=1)
print(f"MLP on XOR: loss {loss:.4f}, predictions {predicted.tolist()} (truth {y_xor.tolist()})")

# %%
grid = np.stack(np.meshgrid(np.linspace(-0.5, 1.5, 200), np.linspace(-0.5, 1.5, 200)), axis=-1)
scores = mlp(grid.reshape(-1, 2).astype(np.float32))
p1 = nn.SoftmaxCrossEntropy.probabilities(scores)[:, 1].reshape(200, 200)
fig, ax = plt.subplots(figsize=(5, 5))
ax.contourf(grid[..., 0], grid[..., 1], p1, levels=20, cmap="coolwarm", alpha=0.7)
ax.scatter(*x_xor.T, c=y_xor, cmap="coolwarm", edgecolors="k", s=200)
ax.set(title="MLP on XOR: P(class 1)")
fig.savefig(out / "01_xor_mlp.png", dpi=100)
print("saved", out / "01_xor_mlp.png")
