# %% [markdown]
# # Tutorial 04: convolution and pooling, by hand and by minidl
#
# The convolution layer of a CNN slides a small filter $w$ (of $K_H \times K_W$ weights)
# over the image and takes a weighted sum at every position. Deep learning's
# "convolution" is a cross-correlation (the kernel is not flipped); with stride $S$ and
# zero padding $P$ (the image is surrounded by $P$ rows and columns of zeros),
#
# $$y[o_h, o_w] = \sum_{i=0}^{K_H-1} \sum_{j=0}^{K_W-1} w[i, j]\; x[o_h S - P + i,\; o_w S - P + j],
#   \qquad O_H = \left\lfloor \frac{H + 2P - K_H}{S} \right\rfloor + 1 .$$
#
# With $C$ input channels and $C_{out}$ filters the sum also runs over the channels $c$,
# and each filter has a bias $b$: $y[c_o, o_h, o_w] = b[c_o] + \sum_{c, i, j} w[c_o, c, i, j]\, x[c, o_h S - P + i, o_w S - P + j]$.
# Pooling shrinks an image: each output is the maximum (max pooling) or the mean (average
# pooling) of one $K \times K$ tile, $y[o_h, o_w] = \max_{i, j < K} x[o_h S + i, o_w S + j]$.
#
# This tutorial reproduces the classic worked examples exactly, draws im2col (how the
# sliding sum becomes one matrix product), applies hand-made filters to a real photograph
# and shows what the filters of a trained network respond to.
#
# Run: `python tutorials/04_convolution.py [--quick] [--out outputs]`

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

import minidl
from minidl import nn, optim
from minidl.data import load_digits, train_val_test_split
from minidl.ops.im2col import im2col
from minidl.train import evaluate, fit
from minidl.tutorial import headline, save, setup

args = setup("Convolution and pooling")

# %% [markdown]
# ## The worked example: a 5x5 image, a 3x3 kernel, no padding -> 3x3
# $O_H = (5 + 0 - 3)/1 + 1 = 3$. The top-left output is the sum of the top-left 3x3 window
# of $x$ times the kernel, element by element: $3 \cdot 0 + 3 \cdot 1 + 2 \cdot 2 + 0 \cdot 2 + 0 \cdot 2 + 1 \cdot 0 + 3 \cdot 0 + 1 \cdot 1 + 2 \cdot 2 = 12$.


# %%
def conv_layer(kernel, stride=1, padding=0):
    """A Conv2d(1, 1) whose single filter is ``kernel`` (no bias)."""
    layer = nn.Conv2d(1, 1, kernel_size=kernel.shape, stride=stride, padding=padding, bias=False)
    layer.weight.data = kernel.astype(np.float32).reshape(1, 1, *kernel.shape)
    return layer


x = np.array([[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=np.float32)
kernel = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float32)
y = conv_layer(kernel)(x[None, None])[0, 0]
print("conv(x, kernel) =\n", y)
assert np.array_equal(y, [[12, 12, 17], [10, 17, 19], [9, 6, 14]]), "does not match the worked example"
print("matches the worked example: [[12, 12, 17], [10, 17, 19], [9, 6, 14]]")

# %% [markdown]
# ## Padding and stride
# Padding $P = 1$ keeps 5x5 -> 5x5 ("same" convolution: $O_H = (5 + 2 - 3)/1 + 1 = 5$);
# stride 2 skips every other position.

# %%
for stride, padding in [(1, 0), (1, 1), (2, 0), (2, 1)]:
    y = conv_layer(kernel, stride, padding)(x[None, None])[0, 0]
    expected = (5 + 2 * padding - 3) // stride + 1
    print(
        f"stride {stride}, padding {padding}: output {y.shape} (formula: ({5} + 2*{padding} - 3) // {stride} + 1 = {expected})"
    )
    assert y.shape == (expected, expected)

# %% [markdown]
# ## Pooling: the worked 4x4 grids
# 2x2 tiles with stride 2: the top-left tile of the grid is $\{5, 3, 0, 2\}$, its maximum 5
# and its mean 2.5.

# %%
grid = np.array([[5, 3, 3, 1], [0, 2, 8, 5], [1, 4, 4, 2], [0, 9, 2, 7]], dtype=np.float32)[None, None]
max_pooled = nn.MaxPool2d(2)(grid)[0, 0]
avg_pooled = nn.AvgPool2d(2)(grid)[0, 0]
print("max pooling:\n", max_pooled, "\naverage pooling:\n", avg_pooled)
assert np.array_equal(max_pooled, [[5, 8], [9, 7]]) and np.array_equal(avg_pooled, [[2.5, 4.25], [3.5, 3.75]])
print("both match the worked grids")

# %% [markdown]
# ## im2col: the sliding sum as one matrix product
# Every 3x3 window of x becomes a column (9 rows: the kernel's positions; 9 columns: the
# output positions): $\mathrm{cols}[(c K_H + i) K_W + j,\; o_h O_W + o_w] = x[c, o_h S - P + i, o_w S - P + j]$.
# The convolution is then the kernel, flattened to a row, times that matrix,
# $Y = W_{mat}\, \mathrm{cols}$ with $W_{mat}$ of shape $(C_{out}, C K_H K_W)$: one product computes all nine sums at once, and with C_out kernels as rows and a
# batch of images it is the large matrix product that BLAS computes fast.

# %%
cols = im2col(x[None, None], 3, 3, (1, 1), (0, 0))[0]  # (C*KH*KW, OH*OW) = (9, 9)
y_matrix = kernel.reshape(1, 9) @ cols
assert np.array_equal(y_matrix.reshape(3, 3), [[12, 12, 17], [10, 17, 19], [9, 6, 14]])
fig, axes = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 1.6, 1]})
axes[0].imshow(x, cmap="Blues")
for (i, j), v in np.ndenumerate(x):
    axes[0].text(j, i, int(v), ha="center", va="center")
axes[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="red", lw=2))
axes[0].set_title("x (5x5); the first window in red")
axes[1].imshow(cols, cmap="Blues")
for (i, j), v in np.ndenumerate(cols):
    axes[1].text(j, i, int(v), ha="center", va="center", fontsize=8)
axes[1].add_patch(plt.Rectangle((-0.5, -0.5), 1, 9, fill=False, ec="red", lw=2))
axes[1].set(
    title="im2col(x): one column per window", xlabel="output position oh*3 + ow", ylabel="kernel position i*3 + j"
)
axes[2].imshow(y_matrix.reshape(3, 3), cmap="Oranges")
for (i, j), v in np.ndenumerate(y_matrix.reshape(3, 3)):
    axes[2].text(j, i, int(v), ha="center", va="center")
axes[2].set_title("kernel row @ columns -> y (3x3)")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
save(fig, "04_im2col.png")

# %% [markdown]
# ## Hand-made filters on a real photograph
# Sobel kernels respond to vertical and horizontal edges; a box filter blurs.

# %%
photo = load_sample_image("china.jpg").mean(axis=2).astype(np.float32) / 255.0  # (427, 640) grey
if args.quick:
    photo = photo[::4, ::4]
filters = {
    "vertical edges (Sobel x)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32),
    "horizontal edges (Sobel y)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float32),
    "blur (5x5 box)": np.full((5, 5), 1 / 25, dtype=np.float32),
}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
axes[0].imshow(photo, cmap="gray")
axes[0].set_title("photograph")
for ax, (name, k) in zip(axes[1:], filters.items()):
    response = conv_layer(k, padding=k.shape[0] // 2)(photo[None, None])[0, 0]
    ax.imshow(np.abs(response) if "edges" in name else response, cmap="gray")
    ax.set_title(name)
for ax in axes:
    ax.axis("off")
fig.tight_layout()
save(fig, "04_handmade_filters.png")

# %% [markdown]
# ## Filters learned by a network
# A small CNN trained on the digits learns its own first-layer filters; below are the
# filters and the feature maps they produce for one digit.

# %%
x_digits, y_digits = load_digits()
train, val, test = train_val_test_split(x_digits, y_digits, seed=0)
minidl.seed(0)
cnn = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 2 * 2, 10),
)
history = fit(
    cnn,
    nn.SoftmaxCrossEntropy(),
    optim.Adam(cnn.parameters(), lr=3e-3),
    train,
    val_data=val,
    epochs=1 if args.quick else 15,
    batch_size=32,
    seed=0,
    verbose=False,
)
accuracy = evaluate(cnn, nn.SoftmaxCrossEntropy(), test)["accuracy"]
print(f"small CNN: test accuracy {accuracy:.3f}")
headline("test_accuracy", accuracy)
digit = test[0][:1]
maps = cnn[1](cnn[0](digit))[0]  # conv1 then ReLU: (8, 8, 8)
fig, axes = plt.subplots(2, 9, figsize=(13, 3.2))
axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
axes[0, 0].set_title(f"digit {test[1][0]}")
axes[1, 0].axis("off")
limit = np.abs(cnn[0].weight.data).max()  # one zero-centred scale for all filters: colours compare
for k in range(8):
    axes[0, k + 1].imshow(cnn[0].weight.data[k, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[0, k + 1].set_title(f"filter {k}", fontsize=8)
    axes[1, k + 1].imshow(maps[k], cmap="gray")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[1, 1].set_ylabel("feature map")
fig.tight_layout()
save(fig, "04_learned_filters.png")
