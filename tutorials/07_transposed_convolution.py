# %% [markdown]
# # Tutorial 07: the transposed convolution, a convolution whose forward and backward passes are swapped
#
# Segmentation: convolutions shrink an image, and to predict a class for every
# pixel the network must grow it back. A convolution with kernel $u$ is a linear map, so it
# is a matrix $U$: flatten the input $x$ and the output $h$ to vectors and
# $v(h) = U\, v(x)$; its backward pass multiplies the upstream gradient by $U^\top$. The
# TRANSPOSED convolution uses $U^\top$ in the forward pass (a small input becomes a large
# one) and $U$ in the backward pass. In minidl this is literal: `minidl/ops/conv_transpose2d.py`'s forward
# calls conv2d's input-gradient function, and its backward calls conv2d's forward.
#
# This tutorial:
# 1. builds U for the worked example's 3x3 kernel over a 4x4 input as an explicit 4x16 matrix;
# 2. computes the worked example U^T v(x) and gets the same 4x4 from `nn.ConvTranspose2d`;
# 3. checks the adjoint identity $\langle \mathrm{conv}(z), y \rangle = \langle z, \mathrm{conv\_transpose}(y) \rangle$ numerically;
# 4. shows stride-2 upsampling, its uneven overlap (the checkerboard pattern) and how
#    output_padding picks the output size;
# 5. learns an upsampling of the digits (4x4 -> 8x8) with a transposed convolution and
#    compares it with copying pixels (`nn.Upsample`).
#
# Run: `python tutorials/07_transposed_convolution.py [--quick] [--out outputs]`


# %%

import matplotlib.pyplot as plt
import numpy as np

from minidl import nn, optim
from minidl.data import load_digits
from minidl.tutorial import headline, save, setup

args = setup("Transposed convolution")


def show_grid(ax, a, title, fmt="{:g}"):
    """A small matrix as an image with its numbers written on it."""
    top = max(a.max(), 1e-12)
    ax.imshow(a, cmap="Blues", vmin=min(a.min(), 0), vmax=top)
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if v > 0.6 * top else "black")
    ax.set(title=title, xticks=[], yticks=[])


# %% [markdown]
# ## The convolution as a matrix U
# The worked example's kernel slid over a 4x4 input, stride 1, no padding: the output is 2x2, four
# numbers, each a weighted sum of the 16 input pixels. So the convolution is a 4x16 matrix
# U. Row oh*2 + ow of U is the kernel placed at (oh, ow) in a 4x4 grid of zeros, read row
# by row (the kernel is not flipped: deep learning's convolution is a cross-correlation).

# %%
kernel = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float64)
U = np.zeros((4, 16))
for oh in range(2):
    for ow in range(2):
        placed = np.zeros((4, 4))
        placed[oh : oh + 3, ow : ow + 3] = kernel
        U[oh * 2 + ow] = placed.reshape(16)
print("U (4x16):")
print(U.astype(int))

# U v(z) is what nn.Conv2d computes, for any 4x4 input z:
conv = nn.Conv2d(1, 1, 3, bias=False).to(np.float64)
conv.weight.data = kernel.reshape(1, 1, 3, 3).copy()
z = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
assert np.allclose(conv(z).reshape(4), U @ z.reshape(16), rtol=1e-12, atol=1e-12)
print("Conv2d(z) == U v(z): yes")

# %% [markdown]
# ## The worked example: U^T v(x)
# The transposed convolution of the 2x2 input x = [[2, 1], [4, 4]] is U^T (16x4) times
# v(x) = (2, 1, 4, 4), reshaped to 4x4. `nn.ConvTranspose2d` with the same kernel (its
# weight is (C_in, C_out, KH, KW) = (1, 1, 3, 3)) must give exactly the worked example's numbers.

# %%
x = np.array([[2, 1], [4, 4]], dtype=np.float64)
expected = np.array([[2, 9, 6, 1], [6, 29, 30, 7], [10, 29, 33, 13], [12, 24, 16, 4]], dtype=np.float64)
by_matrix = (U.T @ x.reshape(4)).reshape(4, 4)

up = nn.ConvTranspose2d(1, 1, 3, bias=False).to(np.float64)
up.weight.data = kernel.reshape(1, 1, 3, 3).copy()
by_layer = up(x.reshape(1, 1, 2, 2))[0, 0]
print("U^T (16x4):")
print(U.T.astype(int))
print("U^T v(x) as 4x4:")
print(by_matrix.astype(int))
assert np.array_equal(by_matrix, expected), "U^T v(x) differs from the worked example"
assert np.array_equal(by_layer, expected), "ConvTranspose2d differs from the worked example"
assert np.array_equal(by_layer, by_matrix)
print("ConvTranspose2d(x) == U^T v(x) == the worked example: yes")

fig, axes = plt.subplots(1, 4, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.2, 1, 1.6]})
show_grid(axes[0], x, "input x (2x2)")
show_grid(axes[1], U.T, "U^T (16x4)")
show_grid(axes[2], kernel, "kernel u (3x3)")
show_grid(axes[3], by_layer, "ConvTranspose2d(x) = U^T v(x)")
save(fig, "07_worked_example.png")

# %% [markdown]
# ## Read U^T by columns: every input pixel drops a scaled copy of the kernel
# Column k of U^T is the kernel placed where input pixel k sits. So U^T v(x) adds up
# x[k] times a copy of the kernel for each input pixel; where copies overlap they add
# (the centre 29 = 2*4 + 1*1 + 4*4 + 4*1). A convolution GATHERS a window into one
# number; a transposed convolution SCATTERS one number into a window.

# %%
fig, axes = plt.subplots(1, 5, figsize=(16, 3.4))
for k, (oh, ow) in enumerate(np.ndindex(2, 2)):
    one_pixel = np.zeros((1, 1, 2, 2))
    one_pixel[0, 0, oh, ow] = x[oh, ow]
    show_grid(axes[k], up(one_pixel)[0, 0], f"x[{oh},{ow}] = {x[oh, ow]:g} times the kernel")
show_grid(axes[4], by_layer, "their sum")
save(fig, "07_scatter.png")

# %% [markdown]
# ## The adjoint identity
# "Transposed" means: for every z (the size of the big image) and y (the size of the
# small one), with the SAME weights,
#
# $$\langle \mathrm{conv}(z), y \rangle = \langle U z, y \rangle = \langle z, U^\top y \rangle
#   = \langle z, \mathrm{conv\_transpose}(y) \rangle .$$
#
# Conv2d's weight is (C_out, C_in, KH, KW); ConvTranspose2d's is (C_in, C_out, KH, KW) for
# the map going back, so one array of shape (5, 3, 3, 3) serves as both: Conv2d(3 -> 5)
# and ConvTranspose2d(5 -> 3), with stride 2 and padding 1 (8x8 <-> 4x4; output_padding 1
# picks 8 rather than 7 on the way back).

# %%
rng = np.random.default_rng(1)
down = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=False).to(np.float64)
back = nn.ConvTranspose2d(5, 3, 3, stride=2, padding=1, output_padding=1, bias=False).to(np.float64)
back.weight.data = down.weight.data  # the same (5, 3, 3, 3) array
z = rng.standard_normal((4, 3, 8, 8))
y = rng.standard_normal((4, 5, 4, 4))
left, right = np.sum(down(z) * y), np.sum(z * back(y))
print(f"<conv(z), y>           = {left:.12f}")
print(f"<z, conv_transpose(y)> = {right:.12f}")
print(f"relative difference    = {abs(left - right) / abs(left):.1e}")
assert np.isclose(left, right, rtol=1e-10), "the adjoint identity does not hold"

# The swap, seen through the layers: the transposed convolution's backward pass IS the
# convolution's forward pass (dx = U dy), and the convolution's backward is U^T dy.
dy_big = rng.standard_normal((4, 3, 8, 8))
back(y)
assert np.allclose(back.backward(dy_big), down(dy_big), rtol=1e-12, atol=1e-12)
down(z)
assert np.allclose(down.backward(y), back(y), rtol=1e-12, atol=1e-12)
print("ConvTranspose2d.backward == Conv2d.forward and Conv2d.backward == ConvTranspose2d.forward: yes")

# %% [markdown]
# ## Stride 2: upsampling, and the checkerboard
# With stride 2 the scattered kernel copies are 2 pixels apart: a 4x4 input grows to about
# 8x8. But a 3x3 kernel does not tile a stride of 2: some output pixels are covered by one
# copy, some by two, some by four. Feed an all-ones input through an all-ones kernel and
# the output counts the copies covering each pixel: an uneven, checkerboard-like grid
# that the network must learn to cancel (Odena et al., "Deconvolution and checkerboard
# artifacts", 2016). A 4x4 kernel with stride 2 overlaps evenly (2 copies per axis
# everywhere inside); nearest-neighbour upsampling has no overlap at all.

# %%
ones = np.ones((1, 1, 4, 4))


def overlap(kernel_size, **kwargs):
    layer = nn.ConvTranspose2d(1, 1, kernel_size, stride=2, bias=False, **kwargs).to(np.float64)
    layer.weight.data = np.ones((1, 1, kernel_size, kernel_size))
    return layer(ones)[0, 0]


k3 = overlap(3)  # (4 - 1) 2 + 3 = 9
k3_same = overlap(3, padding=1, output_padding=1)  # (4 - 1) 2 - 2 + 3 + 1 = 8 = 2 * 4
k4 = overlap(4, padding=1)  # (4 - 1) 2 - 2 + 4 = 8
nearest = nn.Upsample(2)(ones)[0, 0]
print("kernel 3, stride 2 on ones (copies per pixel):")
print(k3.astype(int))
print("kernel 4, stride 2, padding 1:")
print(k4.astype(int))
assert set(np.unique(k3)) == {1, 2, 4}  # uneven: 1, 2 or 4 copies
assert np.all(k4[1:-1, 1:-1] == 4)  # even inside
assert k3_same.shape == k4.shape == nearest.shape == (8, 8)

fig, axes = plt.subplots(1, 4, figsize=(16, 4.3))
show_grid(axes[0], k3, "kernel 3, stride 2: 9x9")
show_grid(axes[1], k3_same, "kernel 3, stride 2, padding 1,\noutput_padding 1: 8x8")
show_grid(axes[2], k4, "kernel 4, stride 2, padding 1: 8x8")
show_grid(axes[3], nearest, "Upsample(2), nearest: 8x8")
fig.suptitle("How many kernel copies cover each output pixel (input: 4x4 ones)")
save(fig, "07_checkerboard.png")

# %% [markdown]
# ### output_padding
# With stride 2, Conv2d(kernel 3, padding 1) maps both 7x7 and 8x8 to 4x4, so going back
# is ambiguous: $O_H = (H - 1) S - 2P + K_H + \text{output\_padding}$, and output_padding
# (smaller than the stride) picks 7 (output_padding 0) or 8 (output_padding 1). Without
# padding, the extra last row and column lie past every kernel copy: they receive only the
# bias.

# %%
for op in (0, 1):
    layer = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=op)
    print(f"padding 1, output_padding {op}: 4x4 -> {layer(ones.astype(np.float32)).shape[2:]}")
layer = nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=1).to(np.float64)
y_bias = layer(ones)[0, 0]
assert (
    y_bias.shape == (10, 10)
    and np.all(y_bias[-1] == layer.bias.data[0])
    and np.all(y_bias[:, -1] == layer.bias.data[0])
)
print(f"padding 0, output_padding 1: 4x4 -> 10x10, last row and column = the bias {layer.bias.data[0]:.4f}")

# %% [markdown]
# ## A learned upsampling
# The digits (8x8) are shrunk to 4x4 by 2x2 average pooling; a single ConvTranspose2d(1, 1)
# with stride 2 learns to grow them back to 8x8 (mean squared error, Adam). Copying
# pixels (nn.Upsample) is the fixed baseline. The learned 4x4 kernel overlaps evenly; the
# 3x3 one has to fight its checkerboard.

# %%
images, _ = load_digits()
images = images.astype(np.float32)
order = np.random.default_rng(0).permutation(len(images))
train, test = images[order[:1400]], images[order[1400:]]
if args.quick:
    train = train[:300]
shrink = nn.AvgPool2d(2)
small_train, small_test = shrink(train), shrink(test)
loss_fn = nn.MSELoss()
steps = 20 if args.quick else 300

results = {"Upsample(2), nearest": (loss_fn(nn.Upsample(2)(small_test), test), nn.Upsample(2)(small_test))}
for name, layer in [
    ("ConvTranspose2d k3 s2 p1 op1", nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)),
    ("ConvTranspose2d k4 s2 p1", nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1)),
]:
    opt = optim.Adam(layer.parameters(), lr=0.05)
    for _step in range(steps):
        loss = loss_fn(layer(small_train), train)
        opt.zero_grad()
        layer.backward(loss_fn.backward())
        opt.step()
    prediction = layer(small_test)
    results[name] = (loss_fn(prediction, test), prediction)
    print(f"{name}: train MSE {loss:.4f} after {steps} full-batch steps")
for name, (mse, _) in results.items():
    print(f"test MSE {mse:.4f}  {name}")
headline("nearest_mse_over_learned_k4_mse", results["Upsample(2), nearest"][0] / results["ConvTranspose2d k4 s2 p1"][0])

fig, axes = plt.subplots(len(results) + 2, 6, figsize=(9, 1.6 * (len(results) + 2)))
rows = [("8x8 original", test), ("4x4 input", small_test)] + [
    (f"{k}\nMSE {v[0]:.4f}", v[1]) for k, v in results.items()
]
for r, (label, batch) in enumerate(rows):
    for c in range(6):
        axes[r, c].imshow(batch[c, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set(xticks=[], yticks=[])
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
fig.suptitle("Growing 4x4 digits back to 8x8: copied pixels vs learned transposed convolutions")
save(fig, "07_learned_upsampling.png")
