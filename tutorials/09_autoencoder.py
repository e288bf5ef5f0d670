# %% [markdown]
# # Tutorial 09: a convolutional autoencoder, and its latent space
#
# An autoencoder: instead of a segmentation, teach the network to reconstruct its own input. No
# labels: the input and the target are the same image. An ENCODER squeezes the image into a
# few numbers, the latent code z (here 4 numbers for the 64 pixels of a digit); a DECODER
# rebuilds the image from z alone:
#
# $$\mathbf{z} = \mathrm{encoder}(\mathbf{x}) \in \mathbb{R}^4, \qquad
#   \hat{\mathbf{x}} = \mathrm{decoder}(\mathbf{z}) \in \mathbb{R}^{1 \times 8 \times 8}, \qquad
#   L = \frac{1}{64} \sum_{p=1}^{64} (\hat x_p - x_p)^2 \ \text{(averaged over the batch)}.$$
#
# Because the only road from x to x_hat goes through 4 numbers, the network must learn what
# the digits have in common. And the decoder can be fed 4 numbers of our own: points near
# the codes of real digits decode to new digits ("the basis of image generation").
#
# This tutorial:
# 1. builds the encoder (convolutions -> Flatten -> Linear to 4) and the decoder
#    (Linear -> Unflatten back to feature maps -> transposed convolution -> Sigmoid);
# 2. trains them together with `MSELoss` on the digits, target = input;
# 3. compares the reconstruction error with two baselines: the mean digit, and PCA with 4
#    components (the best LINEAR encoder/decoder with a code of 4);
# 4. plots reconstructions next to the originals, the latent codes coloured by class, and
#    new digits decoded from points on the line between the codes of two digits.
#
# Run: `python tutorials/09_autoencoder.py [--quick] [--out outputs]`


# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minidl import nn, optim
from minidl.data import load_digits, train_val_test_split
from minidl.train import evaluate, fit, predict
from minidl.tutorial import headline, save, setup

args = setup("A convolutional autoencoder on the digits")
SEED = args.seed
start = time.perf_counter()


def show_digit(ax, image, title=None):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[])
    if title is not None:
        ax.set_title(title, fontsize=8)


# %% [markdown]
# ## 1. The data
# The 8x8 digits, pixels in [0, 1]. The labels are NOT used for training; we keep them
# only to colour the latent space afterwards.

# %%
x, y = load_digits()
(x_train, y_train), (x_val, y_val), (x_test, y_test) = train_val_test_split(x, y, seed=SEED)
epochs = 60
if args.quick:
    epochs, x_train = 8, x_train[:512]
print(f"{len(x_train)} training, {len(x_val)} validation, {len(x_test)} test digits, each {x.shape[1:]}")

# %% [markdown]
# ## 2. Encoder and decoder
# Encoder: two 3x3 convolutions (the second with stride 2: 8x8 -> 4x4), then `Flatten`
# and a `Linear` layer down to the LATENT_SIZE = 4 numbers of the code. No activation
# after it: the code may take any real values.
#
# Decoder, the mirror image: a `Linear` layer from the 4 numbers up to 32 * 4 * 4
# values, `Unflatten` to give them back the shape of feature maps (N, 32, 4, 4) (the
# inverse of `Flatten`, PyTorch's `nn.Unflatten`), a transposed convolution with
# stride 2 (4x4 -> 8x8: OH = (4 - 1) * 2 - 2 * 1 + 4 = 8), a last convolution to one
# channel, and a `Sigmoid` so that the pixels land in [0, 1] like the inputs.

# %%
LATENT_SIZE = 4
C = 16

encoder = nn.Sequential(
    nn.Conv2d(1, C, 3, padding=1),
    nn.ReLU(),  # (N, 16, 8, 8)
    nn.Conv2d(C, 2 * C, 3, stride=2, padding=1),
    nn.ReLU(),  # (N, 32, 4, 4)
    nn.Flatten(),  # (N, 512)
    nn.Linear(2 * C * 4 * 4, LATENT_SIZE),  # (N, 4): the code z
)
decoder = nn.Sequential(
    nn.Linear(LATENT_SIZE, 2 * C * 4 * 4),
    nn.ReLU(),  # (N, 512)
    nn.Unflatten(1, (2 * C, 4, 4)),  # (N, 32, 4, 4)
    nn.ConvTranspose2d(2 * C, C, 4, stride=2, padding=1),
    nn.ReLU(),  # (N, 16, 8, 8)
    nn.Conv2d(C, 1, 3, padding=1),
    nn.Sigmoid(),  # (N, 1, 8, 8) in [0, 1]
)
autoencoder = nn.Sequential(encoder, decoder)

z = encoder(x_train[:5])
assert z.shape == (5, LATENT_SIZE)
assert decoder(z).shape == (5, 1, 8, 8)
print(
    f"encoder {sum(p.size for p in encoder.parameters()):,} parameters, "
    f"decoder {sum(p.size for p in decoder.parameters()):,}: "
    f"{x_train[:5].shape} -> z {z.shape} -> {decoder(z).shape}"
)

# %% [markdown]
# ## 3. Training: the target is the input
# `fit` does not care what the targets are: we hand it (x, x). With a float target and
# `MSELoss` it reports no accuracy, only the loss.

# %%
loss_fn = nn.MSELoss()
t0 = time.perf_counter()
history = fit(
    autoencoder,
    loss_fn,
    optim.Adam(autoencoder.parameters(), lr=2e-3),
    (x_train, x_train),
    val_data=(x_val, x_val),
    epochs=epochs,
    batch_size=32,
    seed=SEED,
    verbose=False,
)
print(
    f"trained {epochs} epoch(s) in {time.perf_counter() - t0:.0f} s; "
    f"training loss {history.train_loss[0]:.4f} -> {history.train_loss[-1]:.4f}, "
    f"validation loss {history.val_loss[0]:.4f} -> {history.val_loss[-1]:.4f}"
)
save(history.plot(), "09_autoencoder_curves.png")

# %% [markdown]
# ## 4. How good are 4 numbers?
# Two baselines on the same test digits:
# - the mean training digit, whatever the input (a code of size 0);
# - PCA with 4 components: project each image on the 4 directions of largest variance of
#   the training images and back. It is the best LINEAR encoder/decoder with a code of
#   4 (an autoencoder without activations can do no better). Our network is not linear.

# %%
test_mse = evaluate(autoencoder, loss_fn, (x_test, x_test))["loss"]
mean_digit = x_train.mean(axis=0)
mean_mse = float(np.mean((x_test - mean_digit) ** 2))
flat_train = x_train.reshape(len(x_train), -1)
flat_test = x_test.reshape(len(x_test), -1)
_, _, Vt = np.linalg.svd(flat_train - flat_train.mean(axis=0), full_matrices=False)
V = Vt[:LATENT_SIZE]  # (4, 64): the 4 principal directions
pca_codes = (flat_test - flat_train.mean(axis=0)) @ V.T
pca_mse = float(np.mean((pca_codes @ V + flat_train.mean(axis=0) - flat_test) ** 2))
print(f"\nreconstruction MSE on the {len(x_test)} test digits (pixels in [0, 1]):")
print(f"  the mean digit           {mean_mse:.4f}")
print(f"  PCA, 4 components        {pca_mse:.4f}")
print(f"  autoencoder, 4 numbers   {test_mse:.4f}")
print(
    "the autoencoder "
    + ("beats" if test_mse < pca_mse else "does not beat")
    + " PCA with as many numbers (the full run does: a non-linear code is worth more than a linear one)"
)
headline("pca_mse_over_autoencoder_mse", pca_mse / test_mse)

# %%
reconstructions = predict(autoencoder, x_test)
assert reconstructions.shape == x_test.shape and reconstructions.min() >= 0 and reconstructions.max() <= 1
shown = [int(np.flatnonzero(y_test == d)[0]) for d in range(10)]  # the first test digit of each class
fig, axes = plt.subplots(2, 10, figsize=(10, 2.8))
for j, i in enumerate(shown):
    show_digit(axes[0, j], x_test[i])
    show_digit(axes[1, j], reconstructions[i])
    axes[1, j].set_xlabel(f"MSE {np.mean((reconstructions[i] - x_test[i]) ** 2):.3f}", fontsize=8)
axes[0, 0].set_ylabel("original")
axes[1, 0].set_ylabel("rebuilt")
fig.suptitle(f"Test digits and their reconstructions from {LATENT_SIZE} numbers")
fig.tight_layout()
save(fig, "09_autoencoder_reconstructions.png")

# %% [markdown]
# ## 5. The latent space
# Every test digit becomes 4 numbers. We never told the network which digit is which,
# yet digits of a class get codes close to each other: to rebuild a digit well, the code
# must say which digit it is. Two of the four coordinates, coloured by the true class:

# %%
codes = predict(encoder, x_test)  # (N, 4)
assert codes.shape == (len(x_test), LATENT_SIZE)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, (a, b) in zip(axes, ((0, 1), (2, 3))):
    points = ax.scatter(codes[:, a], codes[:, b], c=y_test, cmap="tab10", s=10, vmin=-0.5, vmax=9.5)
    for d in range(10):  # the class's label at the middle of its codes
        cx, cy = np.median(codes[y_test == d][:, [a, b]], axis=0)
        ax.text(cx, cy, str(d), fontsize=13, weight="bold", ha="center", va="center")
    ax.set(xlabel=f"z[{a}]", ylabel=f"z[{b}]", title=f"test digits: latent z[{a}] vs z[{b}]")
fig.colorbar(points, ax=axes, ticks=range(10), label="true digit")
save(fig, "09_autoencoder_latent.png")

# %% [markdown]
# ## 6. New digits from the line between two codes
# Take the codes z_a and z_b of two test digits and decode the points in between,
# z(t) = (1 - t) z_a + t z_b for t from 0 to 1: none of them is the code of a real image,
# yet they decode to digit-like images that morph from one into the other. Blending the
# two IMAGES pixel by pixel instead, (1 - t) x_a + t x_b, only fades one into the other.

# %%
steps = np.linspace(0.0, 1.0, 9)
pairs = [(shown[a], shown[b]) for a, b in ((0, 6), (1, 7), (3, 8))]  # 0 -> 6, 1 -> 7, 3 -> 8
fig, axes = plt.subplots(2 * len(pairs), len(steps), figsize=(9, 2.1 * len(pairs)))
for p, (i, j) in enumerate(pairs):
    z_line = np.stack([(1 - t) * codes[i] + t * codes[j] for t in steps]).astype(np.float32)
    decoded = predict(decoder, z_line)
    # the ends of the line are the codes of the two digits: they decode to their reconstructions
    np.testing.assert_allclose(decoded[[0, -1]], reconstructions[[i, j]], rtol=1e-5, atol=1e-6)
    blended = np.stack([(1 - t) * x_test[i] + t * x_test[j] for t in steps])
    for k, t in enumerate(steps):
        show_digit(axes[2 * p, k], decoded[k], f"t = {t:.2f}" if p == 0 else None)
        show_digit(axes[2 * p + 1, k], blended[k])
    axes[2 * p, 0].set_ylabel(f"decoded\n{y_test[i]} -> {y_test[j]}", fontsize=8)
    axes[2 * p + 1, 0].set_ylabel("pixel\nblend", fontsize=8)
fig.suptitle("Decoding points on the line between two codes (top of each pair) vs blending the pixels")
fig.tight_layout()
save(fig, "09_autoencoder_interpolation.png")

# %% [markdown]
# What to see: along the decoded lines the strokes move (the 0 opens and its top bends
# into the 6's stem) instead of two images showing through each other, because every
# decoded image is something the decoder learned to draw. The
# autoencoder was not trained to make its latent space smooth (a variational autoencoder
# is), so some points in between decode to blurry, ambiguous shapes: a plain autoencoder
# is not yet a generator, and making one takes more care (variational autoencoders).

# %%
wall = time.perf_counter() - start
print(
    f"\nseed {SEED}: test reconstruction MSE {test_mse:.4f} (PCA with 4 components {pca_mse:.4f}); "
    f"wall time {wall:.0f} s"
)
