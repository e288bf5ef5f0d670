# %% [markdown]
# # Tutorial 02: linear regression by gradient descent, on a real wine dataset
#
# Can we predict one chemical property of a wine from another with a line? The model and
# its loss, the mean squared error over the $N$ samples:
#
# $$\hat y_i = w_1 x_i + w_0, \qquad L(w_1, w_0) = \frac{1}{N} \sum_{i=1}^{N} (\hat y_i - y_i)^2 .$$
#
# The loss is a landscape over $(w_1, w_0)$. Gradient descent "follows the slope" downhill
# with a learning rate $\eta$:
#
# $$\mathbf{w} \leftarrow \mathbf{w} - \eta\, \nabla L(\mathbf{w}), \qquad
#   \frac{\partial L}{\partial w_1} = \frac{2}{N} \sum_i (\hat y_i - y_i)\, x_i, \qquad
#   \frac{\partial L}{\partial w_0} = \frac{2}{N} \sum_i (\hat y_i - y_i).$$
#
# Here $x$ is the total phenols and $y$ the flavanoids of the 178 wines in scikit-learn's
# wine data (both standardised), the model is one `nn.Linear(1, 1)`, the loss
# `nn.MSELoss`, and the step `optim.SGD`. We draw the landscape, the path the weights take
# on it, and what a learning rate that is too low or too high does; last, how
# `minidl.detect_anomaly()` finds the layer where an exploding learning rate made the
# first NaN.
#
# Run: `python tutorials/02_gradient_descent.py [--quick] [--out outputs]`

# %%
import contextlib

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine

import minidl
from minidl import nn, optim
from minidl.tutorial import headline, save, setup

args = setup("Gradient descent on the wine data")

# %% [markdown]
# ## The data: flavanoids against total phenols

# %%
wine = load_wine()
names = list(wine.feature_names)
x_raw = wine.data[:, names.index("total_phenols")]
y_raw = wine.data[:, names.index("flavanoids")]
x = ((x_raw - x_raw.mean()) / x_raw.std()).astype(np.float32).reshape(-1, 1)
y = ((y_raw - y_raw.mean()) / y_raw.std()).astype(np.float32).reshape(-1, 1)
print(f"{len(x)} wines; correlation of the two features: {np.corrcoef(x_raw, y_raw)[0, 1]:.3f}")

# %% [markdown]
# ## Gradient descent with minidl
# Full batch: every step sees all 178 wines. We record (w1, w0) after each step.


# %%
def descend(lr, steps):
    """Train y = w1 x + w0 from (w1, w0) = (-2, 2); return the path of the weights and the losses."""
    model = nn.Linear(1, 1)
    model.weight.data[...] = -2.0
    model.bias.data[...] = 2.0
    loss_fn = nn.MSELoss()
    opt = optim.SGD(model.parameters(), lr=lr)
    path, losses = [(-2.0, 2.0)], []
    for _ in range(steps):
        losses.append(loss_fn(model(x), y))
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        path.append((float(model.weight.data[0, 0]), float(model.bias.data[0])))
    return np.array(path), np.array(losses)


steps = 10 if args.quick else 40
runs = {lr: descend(lr, steps) for lr in (0.01, 0.3, 0.95, 1.03)}
for lr, (path, losses) in runs.items():
    print(
        f"lr = {lr:<5}: loss {losses[0]:9.3f} -> {losses[-1]:12.4f}, (w1, w0) = ({path[-1, 0]:.3f}, {path[-1, 1]:.3f})"
    )
w_best = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]), y, rcond=None)[0].ravel()
print(f"least squares: (w1, w0) = ({w_best[0]:.3f}, {w_best[1]:.3f})")
headline("r2_lr_0.3", 1 - runs[0.3][1][-1] / y.var())  # R^2: the share of the variance explained

# %% [markdown]
# ## The loss landscape and the paths
# $L$ is quadratic in $\mathbf{w}$, so its second derivatives (the Hessian) are constant:
#
# $$H = \frac{2}{N} \begin{pmatrix} \sum_i x_i^2 & \sum_i x_i \\ \sum_i x_i & N \end{pmatrix}
#     = \begin{pmatrix} 2 & 0 \\ 0 & 2 \end{pmatrix}
#   \quad \text{for standardised } x \ (\textstyle\sum_i x_i = 0,\ \sum_i x_i^2 = N).$$
#
# The landscape is a round bowl with curvature 2 in every direction. Write
# $\mathbf{e} = \mathbf{w} - \mathbf{w}^*$ for the distance to the minimum; one step gives
# $\mathbf{e} \leftarrow (I - \eta H)\,\mathbf{e} = (1 - 2\eta)\,\mathbf{e}$. The steps shrink
# the distance when $|1 - 2\eta| < 1$, that is for $0 < \eta < 1$: far below 1 the
# steps are small (slow), just below 1 the weights overshoot and oscillate across the
# valley while they converge, and above 1 every step lands farther out than the last.

# %%
w1, w0 = np.meshgrid(np.linspace(-3, 3, 121), np.linspace(-3, 3, 121))
landscape = ((w1[..., None] * x[:, 0] + w0[..., None] - y[:, 0]) ** 2).mean(axis=-1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
axes[0].contour(w1, w0, landscape, levels=np.geomspace(0.2, 40, 20), cmap="viridis")
for lr, (path, _) in runs.items():
    axes[0].plot(path[:, 0], path[:, 1], "o-", ms=3, label=f"lr = {lr}")
axes[0].plot(*w_best, "k*", ms=12, label="least squares")
axes[0].set(xlim=(-3, 3), ylim=(-3, 3), xlabel="w1", ylabel="w0", title="Loss landscape and weight paths")
axes[0].legend(fontsize=8)
for lr, (_, losses) in runs.items():
    axes[1].semilogy(losses, label=f"lr = {lr}")
axes[1].set(xlabel="step", ylabel="MSE", title="Too low: slow. Too high: oscillation, divergence")
axes[1].legend(fontsize=8)
fig.tight_layout()
save(fig, "02_gradient_descent.png")

# %% [markdown]
# ## The fitted line

# %%
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(x, y, s=10, alpha=0.6)
path, _ = runs[0.3]
xs = np.linspace(x.min(), x.max(), 2)
ax.plot(xs, path[-1, 0] * xs + path[-1, 1], "r", label="gradient descent (lr = 0.3)")
ax.set(xlabel="total phenols (standardised)", ylabel="flavanoids (standardised)")
ax.legend()
save(fig, "02_fit.png")

# %% [markdown]
# ## When the learning rate explodes: where was the first NaN born?
# With lr = 1.03 above, the loss grows by a constant factor per step. In a deeper model the
# growth compounds: after a few steps the weights are so large that a layer's output
# overflows float32 to inf, and inf - inf or 0 * inf makes NaN. From there a NaN spreads
# to every later layer, to the loss and, after one optimizer step, to every weight.
#
# minidl never lets that pass silently: the loss refuses a prediction holding NaN or inf,
# and the optimizers refuse a non-finite gradient (leaving every weight as it was). But
# the loss can only say *that* its input is bad, not *where* the bad values came from.
# `minidl.detect_anomaly()` (PyTorch has `torch.autograd.detect_anomaly`) checks every
# layer's output in forward and every gradient in backward as soon as it is made, and
# stops at the first non-finite value, naming the layer by its state-dict key. It costs a
# pass over every array, so it is off by default: switch it on to hunt a NaN, or train
# with `minidl.fit(..., detect_anomaly=True)`.


# %%
def explode(anomaly_mode):
    """A two-layer net trained with lr = 5: the loss per step, then the error that stops it."""
    minidl.seed(0)
    mlp = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
    loss_fn = nn.MSELoss()
    opt = optim.SGD(mlp.parameters(), lr=5.0)
    for step in range(20):
        try:
            with minidl.detect_anomaly() if anomaly_mode else contextlib.nullcontext():
                loss = loss_fn(mlp(x), y)
                opt.zero_grad()
                mlp.backward(loss_fn.backward())
                opt.step()
        except (ValueError, FloatingPointError) as err:  # AnomalyError is a FloatingPointError
            print(f"  step {step}: {type(err).__name__}: {err}")
            return
        print(f"  step {step}: loss {loss:.4g}")


print("without anomaly mode:")
explode(False)
print("with minidl.detect_anomaly():")
explode(True)

# %% [markdown]
# Without anomaly mode the loss stops the run and says the prediction holds NaN or inf.
# With it, the same step stops one layer earlier, at the layer whose output first held a
# non-finite value while its input was finite: that is where to look (here the last
# `Linear`, whose weights grew largest), and the cure is the smaller learning rate of the
# first section.
