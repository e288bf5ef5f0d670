# %% [markdown]
# # Tutorial 13: transfer learning and fine-tuning
#
# Training a network from scratch needs many labelled images. Yet the first layers of a
# CNN trained on one task learn edges, textures and parts that serve many others: the
# network $f = h \circ g$ splits into a **backbone** $g$ (the convolutions: their output
# is the *features*) and a **head** $h$ (the linear layer after them: the task).
# Transfer learning keeps a backbone $g$ trained on a large task and learns a new head for
# a small one, in one of two ways:
#
# - **linear probe** (feature extraction): $g$ frozen, only $h$ trained. The new task is a
#   linear classifier on fixed features $g(x)$: few parameters, little data needed.
# - **fine-tuning**: $g$ trained too, with a smaller learning rate than the new head, so the
#   features adapt without being wiped out by the large early gradients of a random head:
#
# $$\theta_g \leftarrow \theta_g - \eta_g\, \nabla_{\theta_g} L, \qquad
#   \theta_h \leftarrow \theta_h - \eta_h\, \nabla_{\theta_h} L, \qquad \eta_g \ll \eta_h$$
#
# (here with AdamW's update in place of the plain gradient step). In minidl, freezing is
# `backbone.requires_grad_(False)` (no gradient accumulated, no update, while the gradient
# still flows through to the layers below). A training step (`fit`) does not even run the
# frozen backbone's backward: `model.backward_params` stops at the first layer that trains,
# since nothing below it has a gradient to give, so a linear probe costs about the
# backbone's forward and the head (as in PyTorch, whose autograd never enters the frozen
# part). Two learning rates are two **parameter
# groups**: `optim.AdamW([{"params": backbone.parameters(), "lr": 2e-4}, {"params":
# head.parameters()}], lr=2e-3)`, as in PyTorch.
#
# The experiment: pre-train on Fashion-MNIST's first five classes (T-shirt, trouser,
# pullover, dress, coat), save the model, then learn the other five (sandal, shirt,
# sneaker, bag, ankle boot) from 10, 50 or all (6000) examples per class, three ways.
#
# Run: `python tutorials/13_transfer_learning.py [--quick] [--pretrain-epochs 5] [--out outputs]`

# %%
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import nn, optim
from minidl.train import evaluate, fit, predict
from minidl.tutorial import fashion_mnist, headline, save, setup

args = setup("Transfer learning and fine-tuning", pretrain_epochs=5)

# %% [markdown]
# ## Two tasks from one dataset
# Task A: classes 0-4, all their training images. Task B: classes 5-9, relabelled 0-4.
# The pixels are standardised with task A's mean and spread: a pre-trained model comes
# with the preprocessing it was trained with.

# %%
(x_all, y_all), (x_test, y_test), dataset, classes = fashion_mnist(
    2000 if args.quick else None, 500 if args.quick else None
)
mean, std = x_all[y_all < 5].mean(), x_all[y_all < 5].std()


def task(x, y, first):
    keep = (y >= first) & (y < first + 5)
    return ((x[keep] - mean) / std).astype(np.float32), y[keep] - first


task_a, test_a = task(x_all, y_all, 0), task(x_test, y_test, 0)
task_b, test_b = task(x_all, y_all, 5), task(x_test, y_test, 5)
names_b = classes[5:]
print(
    f"{dataset}: task A {len(task_a[0])} training images, task B {len(task_b[0])} training and {len(test_b[0])} test images"
)


# %% [markdown]
# ## The network: a backbone and a head
# A LeNet-style backbone (two convolutions with ReLU and max pooling: 32 maps of 5x5, so
# 800 features per image) and a linear head on those features. `model[0]` is the backbone
# and `model[1]` the head, so the state-dict keys read `0.0.weight` (first convolution of
# the backbone) and `1.weight` (the head). The features are the convolutions' output, not
# a hidden layer trained to separate task A's classes: the more general the features, the
# better they transfer.


# %%
def network(classes=5):
    backbone = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )  # fmt: skip
    return nn.Sequential(backbone, nn.Linear(32 * 5 * 5, classes))


def train(model, opt, data, steps, seed):
    """AdamW for about ``steps`` steps of batch 50 (at least 2 epochs), cosine schedule."""
    epochs = max(2, -(-steps * 50 // len(data[0])))
    fit(
        model, nn.SoftmaxCrossEntropy(), opt, data, epochs=epochs, batch_size=50, seed=seed, verbose=False,
        scheduler=optim.CosineAnnealingLR(opt, T_max=epochs),
    )  # fmt: skip
    return epochs


# %% [markdown]
# ## Pre-training on task A, then saving
# `minidl.save` writes the weights (an `.npz` of arrays, no pickle); each experiment below
# takes the backbone's entries from that file (`minidl.read_checkpoint` gives its arrays by
# key) and loads them into a fresh network's backbone.

# %%
minidl.seed(args.seed)
pretrained = network()
opt = optim.AdamW(pretrained.parameters(), lr=2e-3)
epochs = 1 if args.quick else args.pretrain_epochs
history = fit(
    pretrained, nn.SoftmaxCrossEntropy(), opt, task_a, epochs=epochs, batch_size=64, seed=args.seed, verbose=False,
    scheduler=optim.CosineAnnealingLR(opt, T_max=epochs),
)  # fmt: skip
acc_a = evaluate(pretrained, nn.SoftmaxCrossEntropy(), test_a)["accuracy"]
checkpoint = minidl.save(pretrained, args.out / "13_pretrained.npz")
print(
    f"pre-trained on task A for {epochs} epochs ({sum(history.epoch_time):.0f} s): test accuracy {acc_a:.4f}; saved {checkpoint}"
)

# %% [markdown]
# ## Three ways to learn task B
# For each training-set size (images per class) and seed: a subset of task B's training
# images, then
#
# 1. **from scratch**: a fresh network, every weight learned from the subset;
# 2. **linear probe**: the pre-trained backbone frozen (`requires_grad_(False)`), a fresh
#    head; afterwards the backbone is checked to be bit-identical to the file;
# 3. **fine-tuning**: the pre-trained backbone at learning rate 2e-4, a fresh head at 2e-3.
#
# All three train for the same number of steps and are measured on task B's test set.

# %%
sizes = [10, 50, None]  # None: all the images of each class
seeds = [0] if args.quick else [0, 1, 2]
steps = 10 if args.quick else 400
rng = np.random.default_rng(args.seed)
results = {method: {} for method in ("from scratch", "linear probe", "fine-tuning")}
for size in sizes:
    for seed in seeds if size is not None else seeds[:1]:
        pick = np.concatenate([rng.permutation(np.flatnonzero(task_b[1] == k))[:size] for k in range(5)])
        subset = (task_b[0][pick], task_b[1][pick])
        for method in results:
            minidl.seed(1000 + seed)
            model = network()  # fresh weights; the head stays fresh below
            if method == "from scratch":
                opt = optim.AdamW(model.parameters(), lr=2e-3)
            else:  # the backbone's entries of the file ("0.0.weight", ...); its head is task A's
                saved = minidl.read_checkpoint(checkpoint)["model"]
                model[0].load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("0.")})
                if method == "linear probe":
                    model[0].requires_grad_(False)
                    opt = optim.AdamW(model.parameters(), lr=2e-3)  # the frozen parameters are skipped
                else:
                    groups = [{"params": model[0].parameters(), "lr": 2e-4}, {"params": model[1].parameters()}]
                    opt = optim.AdamW(groups, lr=2e-3)
            epochs = train(model, opt, subset, steps, seed)
            accuracy = evaluate(model, nn.SoftmaxCrossEntropy(), test_b)["accuracy"]
            results[method].setdefault(size, []).append(accuracy)
            if method == "linear probe":
                same = all(np.array_equal(v, saved["0." + k]) for k, v in model[0].state_dict().items())
                print(f"  linear probe: backbone bit-identical to the pre-trained file after training: {same}")
            label = "all" if size is None else size
            print(
                f"{label:>4} per class, seed {seed}: {method:12s} {accuracy:.4f}  ({epochs} epochs of {len(pick)} images)"
            )

# %% [markdown]
# ## Accuracy against the number of examples
# What to look for: with 10 images per class, training from scratch has 50 images to learn
# every weight from, and its accuracy depends on which 50 it got (the spread over seeds);
# the pre-trained features turn the task into fitting one linear layer, which needs far
# less data, so the linear probe and fine-tuning start higher and vary less. With all
# 30000 images, training from scratch catches up: transfer matters most when labels are
# scarce. Here fine-tuning and the linear probe end close: the two tasks are small and
# the frozen features already serve the new one (on a task further from the pre-training,
# adapting the features matters more).

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
full = len(task_b[0]) // 5
for method, by_size in results.items():
    xs = [size or full for size in by_size]
    means = [np.mean(v) for v in by_size.values()]
    spreads = [np.std(v) for v in by_size.values()]
    ax.errorbar(xs, means, yerr=spreads, marker="o", capsize=3, label=method)
    print(
        f"{method:12s} "
        + "  ".join(f"{size or 'all'}: {m:.4f} +- {s:.4f}" for size, m, s in zip(by_size, means, spreads))
    )
ax.set_xscale("log")
ax.set(xlabel="training images per class (task B)", ylabel="test accuracy (task B)", title="transfer from task A")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
save(fig, "13_accuracy_vs_examples.png")

# %% [markdown]
# ## What the frozen backbone sees
# The 800 features of task B's test images, projected on their two principal directions
# (PCA: the eigenvectors of the features' covariance with the two largest eigenvalues),
# for a backbone with random weights and for the pre-trained one. Random convolutions
# followed by ReLU and pooling are not useless (they still respond to edges and blobs,
# and the classes already form regions), but the pre-trained backbone, which never saw a
# sandal or a bag, spreads the classes further apart: more of the features' variation is
# about what the object is.

# %%
minidl.seed(args.seed)
random_backbone = network()[0]
shown = slice(0, 1500)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (title, backbone) in zip(
    axes, (("random backbone", random_backbone), ("pre-trained backbone (task A)", pretrained[0]))
):
    features = predict(backbone, test_b[0][shown])
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    for k in range(5):
        mask = test_b[1][shown] == k
        ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.6, label=names_b[k])
    ax.set(title=title, xlabel="principal direction 1", ylabel="principal direction 2")
    ax.legend(fontsize=8, markerscale=2)
fig.tight_layout()
save(fig, "13_features.png")

for method in results:
    headline(f"{method.replace(' ', '_').replace('-', '_')}_10_per_class", float(np.mean(results[method][10])))
