# %% [markdown]
# # Tutorial 01: Rosenblatt's perceptron, and why XOR needs a hidden layer
#
# The perceptron (Rosenblatt, 1958) is one neuron: it computes a weighted sum of its inputs
# and fires when the sum is positive,
#
# $$z = \mathbf{w}^\top \mathbf{x} + b = \sum_j w_j x_j + b, \qquad
#   \hat y = \begin{cases} 1 & z > 0 \\ 0 & \text{otherwise.} \end{cases}$$
#
# Its learning rule takes the training samples $(\mathbf{x}_i, y_i)$ one at a time and
# updates, with a learning rate $\eta$,
#
# $$w_j \leftarrow w_j + \eta\,(y_i - \hat y_i)\,x_{i,j}, \qquad b \leftarrow b + \eta\,(y_i - \hat y_i).$$
#
# The factor $y_i - \hat y_i$ is 0 when the neuron is right, so the rule only moves the
# weights on a mistake, towards the sample when it should have fired ($+1$) and away from it
# when it should not ($-1$). On linearly separable data it stops making mistakes after a
# finite number of updates (Novikoff's convergence theorem, 1962); on XOR it never can,
# because no line separates XOR. An MLP with one hidden layer, trained by gradient descent
# with minidl, solves it.
#
# Run: `python tutorials/01_perceptron.py [--quick] [--out outputs]`

# %%
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim
from minidl.tutorial import headline, save, setup

args = setup("Perceptron and XOR", seed=1)

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
# The decision boundary is the line where $z = 0$: $w_1 x_1 + w_2 x_2 + b = 0$, i.e.
# $x_2 = -(w_1 x_1 + b) / w_2$, drawn after each epoch (lighter = earlier).

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
save(fig, "01_perceptron_boundary.png")

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
#
# This is the first training loop of the course, and every later one has the same four
# lines: the forward pass and the loss, `opt.zero_grad()`, the backward pass, `opt.step()`.
#
# **Why `zero_grad()`.** `backward()` does not overwrite a parameter's gradient, it *adds*
# to it: `p.grad += dL/dp`. That is what a parameter used twice needs (a shared layer
# receives the sum of both uses' gradients), and it lets a program add the gradients of
# several small batches before one step (gradient accumulation, for a batch that does not
# fit in memory). PyTorch does the same, and minidl follows it. The price is that the
# gradients must be cleared before each new batch: without `zero_grad()`, step $t$ uses
# $\sum_{s \le t} \nabla L_s$, the sum of every gradient so far, instead of
# $\nabla L_t$. The old gradients keep pushing long after they stopped being right, like
# a momentum that never decays. The loop below trains the same network both ways.


# %%
def train_xor(clear_gradients, steps):
    minidl.seed(1)
    mlp = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(mlp.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for _step in range(steps):
        loss = loss_fn(mlp(x_xor), y_xor)
        if clear_gradients:
            opt.zero_grad()
        mlp.backward(loss_fn.backward())
        opt.step()
        losses.append(float(loss))
    return mlp, losses


steps = 50 if args.quick else 500
mlp, losses = train_xor(clear_gradients=True, steps=steps)
_, losses_no_zero = train_xor(clear_gradients=False, steps=steps)
predicted = mlp(x_xor).argmax(axis=1)
print(f"MLP on XOR: loss {losses[-1]:.4f}, predictions {predicted.tolist()} (truth {y_xor.tolist()})")
print(f"the same loop without zero_grad(): loss {losses_no_zero[-1]:.4f} after {steps} steps")
headline("xor_accuracy", float(np.mean(predicted == y_xor)))

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(losses, label="with zero_grad()")
ax.plot(losses_no_zero, label="without: gradients pile up")
ax.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="Forgetting zero_grad()")
ax.legend()
fig.tight_layout()
save(fig, "01_zero_grad.png")

# %%
grid = np.stack(np.meshgrid(np.linspace(-0.5, 1.5, 200), np.linspace(-0.5, 1.5, 200)), axis=-1)
scores = mlp(grid.reshape(-1, 2).astype(np.float32))
p1 = nn.SoftmaxCrossEntropy.probabilities(scores)[:, 1].reshape(200, 200)
fig, ax = plt.subplots(figsize=(5, 5))
ax.contourf(grid[..., 0], grid[..., 1], p1, levels=20, cmap="coolwarm", alpha=0.7)
ax.scatter(*x_xor.T, c=y_xor, cmap="coolwarm", edgecolors="k", s=200)
ax.set(title="MLP on XOR: P(class 1)")
save(fig, "01_xor_mlp.png")
