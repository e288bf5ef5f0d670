"""Tutorial 06: batch normalisation, dropout, and residual connections.

The course's batch normalisation normalises each channel with the batch's statistics,

    x_hat_i = (x_i - mu_B) / sqrt(sigma_B^2 + eps)        y_i = gamma x_hat_i + beta,

and derives its backward pass as four equations (dl/dx_hat, dl/dsigma^2, dl/dmu, dl/dx).
We check those equations numerically, then train the same deep network with and without
batch norm and dropout, and finally see why a deep stack of layers learns slowly while
the same stack with residual connections (y = x + f(x)) does not.

Run: python tutorials/06_batchnorm_dropout_resnet.py [--quick] [--out outputs]
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
from minidl.data import load_digits, train_val_test_split
from minidl.gradcheck import numerical_gradient, relative_error
from minidl.ops import batchnorm
from minidl.train import evaluate, fit

parser = argparse.ArgumentParser(description="Batch norm, dropout, residual networks")
parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
parser.add_argument("--out", default="outputs", help="folder for the figures")
args, _ = parser.parse_known_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. The four backward equations, checked numerically
# ``minidl.ops.batchnorm.backward`` is the course's four equations, ``backward_compact`` the
# one-line form; both are compared with central differences of
# f(x) = sum(batchnorm(x) * dy) for a random dy, in float64.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
dy = rng.standard_normal(x.shape)
y, cache = batchnorm.forward_train(x, gamma, beta, 1e-5)
dx_four, dgamma, dbeta = batchnorm.backward(dy, gamma, cache)
dx_compact, _, _ = batchnorm.backward_compact(dy, gamma, cache)
dx_numeric = numerical_gradient(lambda v: np.sum(batchnorm.forward_train(v, gamma, beta, 1e-5)[0] * dy), x)
print(f"four equations vs finite differences: worst error {relative_error(dx_four, dx_numeric):.1e}")
print(f"compact form vs four equations:       worst error {relative_error(dx_compact, dx_four):.1e}")
print(f"input gradient summed per channel (should be 0): {dx_four.sum(axis=(0, 2, 3))}")
print(
    f"output per channel: mean {y.mean(axis=(0, 2, 3)).round(6)} (= beta {beta.round(6)}), "
    f"std {y.std(axis=(0, 2, 3)).round(4)} (= |gamma| {np.abs(gamma).round(4)})"
)

# %% [markdown]
# ## 2. The same deep network, with and without batch norm and dropout
# Six hidden layers of 128 units on the digits, plain SGD with a modest learning rate.
# Batch norm keeps every layer's input centred and scaled, so the signal and its gradient
# survive the depth; dropout trades a little training accuracy for less over-fitting.

# %%
x_digits, y_digits = load_digits()
train, val, test = train_val_test_split(x_digits, y_digits, seed=0)
epochs = 30
if args.quick:
    epochs, train = 1, (train[0][:300], train[1][:300])


def deep_mlp(batch_norm, dropout, depth=6, width=128):
    layers, n_in = [nn.Flatten()], 64
    for _ in range(depth):
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


variants = {"plain": (False, 0.0), "batch norm": (True, 0.0), "batch norm + dropout 0.2": (True, 0.2)}
histories = {}
for name, (bn, p) in variants.items():
    minidl.seed(0)
    model = deep_mlp(bn, p)
    histories[name] = fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        train,
        val_data=val,
        epochs=epochs,
        batch_size=32,
        seed=0,
        verbose=False,
    )
    acc = evaluate(model, nn.SoftmaxCrossEntropy(), test)["accuracy"]
    print(
        f"{name:26s}: final train loss {histories[name].train_loss[-1]:.4f}, "
        f"validation accuracy {histories[name].val_acc[-1]:.4f}, test accuracy {acc:.4f}"
    )

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, h in histories.items():
    (line,) = axes[0].plot(range(1, epochs + 1), h.train_loss, label=f"{name} (train)")
    axes[0].plot(range(1, epochs + 1), h.val_loss, "--", color=line.get_color(), label=f"{name} (validation)")
    axes[1].plot(range(1, epochs + 1), h.val_acc, color=line.get_color(), label=name)
axes[0].set(xlabel="epoch", ylabel="loss", yscale="log", title="6 hidden layers: loss")
axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
axes[0].legend(fontsize=7)
axes[1].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "06_batchnorm_dropout.png", dpi=100)
print("saved", out / "06_batchnorm_dropout.png")

# %% [markdown]
# ## 3. Why skips let deeper networks train
# Twenty tanh layers in a row: each multiplies the backward signal by its Jacobian, and the
# gradient that reaches the first layers shrinks layer after layer. With residual blocks,
# y = x + f(x), the backward pass is dx = dy + J_f^T dy: the identity carries the gradient
# through every block unchanged, so the first layers learn as fast as the last.

# %%
depth = 20


def block(width):
    return nn.Sequential(nn.Linear(width, width), nn.Tanh())


def deep_net(residual, width=64):
    blocks = [nn.Residual(block(width)) if residual else block(width) for _ in range(depth)]
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Tanh(), *blocks, nn.Linear(width, 10))


curves, first_grad = {}, {}
for residual in (False, True):
    name = "residual" if residual else "plain"
    minidl.seed(0)
    model = deep_net(residual)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model(train[0][:256]), train[1][:256])
    model.backward(loss_fn.backward())
    first_grad[name] = np.linalg.norm(model[1].weight.grad)  # the first Linear's gradient
    model.zero_grad()
    curves[name] = fit(
        model,
        loss_fn,
        optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        train,
        val_data=val,
        epochs=epochs,
        batch_size=32,
        seed=0,
        verbose=False,
    )
    print(
        f"{depth} blocks, {name:8s}: |grad| of the first layer at initialisation {first_grad[name]:.2e}, "
        f"train loss after {epochs} epochs {curves[name].train_loss[-1]:.4f}, "
        f"validation accuracy {curves[name].val_acc[-1]:.4f}"
    )

fig, ax = plt.subplots(figsize=(6, 4))
for name, h in curves.items():
    ax.plot(range(1, epochs + 1), h.train_loss, label=f"{name} ({depth} blocks)")
ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Plain vs residual: training loss")
ax.legend()
fig.tight_layout()
fig.savefig(out / "06_residual.png", dpi=100)
print("saved", out / "06_residual.png")
