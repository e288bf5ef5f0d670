# %% [markdown]
# # Tutorial 05: LeNet-5 on real images
#
# LeNet-5 (LeCun et al., 1998): a 32x32 image goes through
#
#     C1: 6 convolutions 5x5 -> S2: subsampling by 2 -> C3: 16 convolutions 5x5
#     -> S4: subsampling by 2 -> C5: 120 units -> F6: 84 units -> 10 outputs
#
# Here with today's habits (ReLU instead of sigmoids, max pooling for the subsampling, Adam)
# and PyTorch's layer names. A 28x28 image with padding 2 in C1 is the 32x32 of the paper.
# Each layer's output size follows the convolution's rule
# $O = \lfloor (H + 2P - K)/S \rfloor + 1$: C1 gives $(28 + 4 - 5)/1 + 1 = 28$, S2 halves
# it to 14, C3 gives $(14 - 5)/1 + 1 = 10$, S4 halves it to 5, so C5 sees
# $16 \times 5 \times 5 = 400$ values.
#
# It trains on real Fashion-MNIST (clothes, 60000 + 10000 images) when the files are
# available (see `minidl.data.load_mnist`), otherwise on the embedded 8x8 digits scaled
# up to 28x28, and says which. Good practice: a validation set cut from the training
# images, learning curves, and the test set touched once at the end.
#
# Run: `python tutorials/05_lenet.py [--quick] [--epochs 10] [--out outputs]`

# %%
import matplotlib.pyplot as plt
import numpy as np

from minidl import nn, optim
from minidl.metrics import confusion_matrix
from minidl.train import evaluate, fit, predict_classes
from minidl.tutorial import fashion_mnist, headline, save, setup

args = setup("LeNet-5", epochs=10)

# %% [markdown]
# ## The data

# %%
(x_train, y_train), test, dataset, classes = fashion_mnist(3000 if args.quick else None, 1000 if args.quick else None)
n_val = len(x_train) // 12  # 5000 of Fashion-MNIST's 60000
order = np.random.default_rng(0).permutation(len(x_train))
val = (x_train[order[:n_val]], y_train[order[:n_val]])
train = (x_train[order[n_val:]], y_train[order[n_val:]])
# Standardise with the training statistics (one mean and one spread for all pixels).
mean, std = train[0].mean(), train[0].std()
train, val, test = [((xs - mean) / std, ys) for xs, ys in (train, val, test)]
print(
    f"dataset: {dataset}: train {len(train[0])}, validation {len(val[0])}, test {len(test[0])} images of shape {train[0].shape[1:]}"
)

fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, image, label in zip(axes.ravel(), train[0], train[1]):
    ax.imshow(image[0], cmap="gray_r")
    ax.set_title(classes[label], fontsize=8)
    ax.axis("off")
save(fig, "05_samples.png")

# %% [markdown]
# ## LeNet-5 and its parameter count
# A convolution has $C_{out} (C K_H K_W) + C_{out}$ parameters (weights and biases), a
# linear layer $n_{out}\, n_{in} + n_{out}$: C1: 6 x (1 x 5 x 5) + 6 = 156;
# C3: 16 x (6 x 5 x 5) + 16 = 2416; C5: 400 x 120 + 120 = 48120; F6: 120 x 84 + 84 = 10164;
# output: 84 x 10 + 10 = 850. Total 61706.


# %%
def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # C1, S2: 6 x 14 x 14
        nn.Conv2d(6, 16, kernel_size=5),
        nn.ReLU(),
        nn.MaxPool2d(2),  # C3, S4: 16 x 5 x 5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),  # C5
        nn.Linear(120, 84),
        nn.ReLU(),  # F6
        nn.Linear(84, 10),  # output
    )


model = lenet5()
total = model.summary((1, 28, 28))
print(f"{total} parameters (the count above: 61706)")

# %% [markdown]
# ## Training: Adam, batch 64, the learning rate annealed along a cosine to 0
# (big steps first, small steps to settle): in epoch $e$ of $T$,
# $\eta_e = \eta_0 \cdot \tfrac12 \left(1 + \cos(\pi e / T)\right)$ (Loshchilov and Hutter's
# cosine schedule, without restarts). The time of each epoch is printed next to its
# accuracy.

# %%
loss_fn = nn.SoftmaxCrossEntropy()
opt = optim.Adam(model.parameters(), lr=2e-3)
epochs = 2 if args.quick else args.epochs  # two points make a curve
history = fit(
    model,
    loss_fn,
    opt,
    train,
    val_data=val,
    epochs=epochs,
    batch_size=64,
    seed=0,
    verbose=False,
    scheduler=optim.CosineAnnealingLR(opt, T_max=epochs),
)
for e in range(epochs):
    print(
        f"epoch {e + 1:2d}: {history.epoch_time[e]:5.1f} s  train loss {history.train_loss[e]:.4f} "
        f"acc {history.train_acc[e]:.4f}  validation loss {history.val_loss[e]:.4f} acc {history.val_acc[e]:.4f}"
    )
result = evaluate(model, loss_fn, test)
print(
    f"{dataset}: test accuracy {result['accuracy']:.4f} after {epochs} epochs "
    f"({np.mean(history.epoch_time):.1f} s per epoch on average)"
)
headline("test_accuracy", result["accuracy"])
save(history.plot(), "05_learning_curves.png")

# %% [markdown]
# ## Which classes are confused?
# Rows: the truth; columns: the prediction. On Fashion-MNIST the shirt / T-shirt / pullover /
# coat family is where LeNet errs.

# %%
cm = confusion_matrix(test[1], predict_classes(model, test[0]), 10)
fig, ax = plt.subplots(figsize=(6.5, 5.5))
ax.imshow(cm, cmap="Blues")
for (i, j), v in np.ndenumerate(cm):
    ax.text(j, i, v, ha="center", va="center", fontsize=7, color="white" if v > cm.max() / 2 else "black")
ax.set_xticks(range(10), classes, rotation=60, fontsize=8)
ax.set_yticks(range(10), classes, fontsize=8)
ax.set(xlabel="predicted", ylabel="true", title=f"LeNet-5 on {dataset}: confusion matrix")
fig.tight_layout()
save(fig, "05_confusion.png")
