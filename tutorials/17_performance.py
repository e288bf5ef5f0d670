# %% [markdown]
# # Tutorial 17: where the time goes: FLOPs, profiles and the roofline
#
# A training step costs a number of floating-point operations (FLOPs) that follows from
# the shapes alone. For a convolution with a $K_H \times K_W$ kernel, $C_{in}$ input and
# $C_{out}$ output channels and an $O_H \times O_W$ output, per image,
#
# $$\mathrm{FLOPs} = 2\, C_{out}\, O_H\, O_W\, C_{in}\, K_H\, K_W$$
#
# (a multiply and an add per kernel weight per output), and its backward pass costs twice
# that (one product of the same size for $dx$, one for $dw$). How fast those FLOPs can run
# depends on the machine and on the **arithmetic intensity** $I$ of the layer: its FLOPs
# per byte of memory it must move. The **roofline model** (Williams, Waterman and
# Patterson, 2009) bounds what any kernel can reach:
#
# $$\text{attainable GFLOP/s} = \min\big(P_{peak},\; B \cdot I\big)$$
#
# with $P_{peak}$ the machine's arithmetic peak and $B$ its memory bandwidth. Left of the
# *ridge point* $I = P_{peak} / B$ a layer is **memory-bound**: it does so little
# arithmetic per byte that the memory cannot feed the cores (ReLU, batch norm, pooling, a
# 1 x 1 convolution on few channels); right of it a layer can be **compute-bound** (a 3 x 3
# convolution on many channels, a large matrix product), and how close it gets to the peak
# is the kernel's merit.
#
# We measure this machine's peak and bandwidth, count LeNet-5's FLOPs, profile a LeNet-5
# training step and a VGG-style block layer by layer with `minidl.profile`, and place every
# layer on the roofline.
#
# Run: `python tutorials/17_performance.py [--quick] [--out outputs]` (about 10 seconds on 2 cores.)

# %%
import matplotlib.pyplot as plt
import numba
import numpy as np

import minidl
from minidl import nn
from minidl.profiler import gemm_peak, memory_bandwidth
from minidl.tutorial import headline, save, setup

args = setup("Where the time goes: FLOPs, profiles and the roofline", seed=0)
steps = 2 if args.quick else 10

# %% [markdown]
# ## 1. The machine: arithmetic peak and memory bandwidth
# The peak is measured the way it is reached: a large float32 matrix product (n = 1024,
# $2n^3$ FLOPs) by the BLAS library, on all of minidl's threads, the fastest of a few runs.
# The bandwidth is the fastest copy of a 256 MB array (each byte read once and written
# once). Both are upper bounds for minidl's kernels; a machine that sets
# `OPENBLAS_CORETYPE` to an older core type measures a lower peak.

# %%
threads = numba.get_num_threads()
peak = gemm_peak(n=512 if args.quick else 1024, repeats=3 if args.quick else 10)
bandwidth = memory_bandwidth(megabytes=64 if args.quick else 256, repeats=3 if args.quick else 5)
ridge = peak / bandwidth
print(
    f"{threads} threads: float32 matrix-product peak {peak:.0f} GFLOP/s, memory bandwidth {bandwidth:.1f} GB/s; "
    f"ridge point {ridge:.1f} FLOP/byte"
)

# %% [markdown]
# ## 2. Counting LeNet-5's FLOPs
# LeNet-5 on 28 x 28 images: conv 5 x 5 (1 -> 6, padding 2), pool, conv 5 x 5 (6 -> 16),
# pool, and three linear layers. The formula above, layer by layer, for one image's
# forward pass. A training step is about three times that, less one product: nothing
# needs the gradient with respect to the images, so a training step (`fit`, and the
# profile below) calls `model.backward_params(dy)` instead of `model.backward(dy)`, and
# the first layer computes only its $dw$ (PyTorch skips it too: the images do not
# require grad). In a `Sequential` it goes further: backward stops at the first layer that
# trains, so a frozen backbone (tutorial 13's linear probe) runs no backward at all.

# %%
by_hand = {
    "conv 1": 2 * 6 * 28 * 28 * 1 * 5 * 5,
    "conv 2": 2 * 16 * 10 * 10 * 6 * 5 * 5,
    "linear 400 -> 120": 2 * 400 * 120,
    "linear 120 -> 84": 2 * 120 * 84,
    "linear 84 -> 10": 2 * 84 * 10,
}
forward = sum(by_hand.values())
print(
    ", ".join(f"{k}: {v / 1e6:.3f}" for k, v in by_hand.items())
    + f" MFLOP; forward {forward / 1e6:.3f} MFLOP per image"
)
step_by_hand = 64 * (3 * forward - by_hand["conv 1"])  # conv 1: no dx
print(
    f"a training step on a batch of 64: 64 x (3 x {forward / 1e6:.3f} - {by_hand['conv 1'] / 1e6:.3f}) = "
    f"{step_by_hand / 1e6:.0f} MFLOP, {step_by_hand / peak / 1e6:.2f} ms at the peak"
)

# %% [markdown]
# ## 3. A profile of a LeNet-5 training step
# `minidl.profile(model, x, loss_fn, target, steps)` runs one untimed step (the kernels
# compile on their first call) and then `steps` timed ones, timing every layer's forward
# and backward. The FLOPs come from the same formulas (plus the pooling windows and an
# estimate per element for the element-wise layers); "other" is the time outside the
# layers: the containers' loops and the input checks.


# %%
def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


rng = np.random.default_rng(args.seed)
x = rng.random((64, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, 64)
lenet_profile = minidl.profile(lenet(), x, nn.SoftmaxCrossEntropy(), y, steps=steps)
print(lenet_profile)
step_flops = sum(r["flops"] for r in lenet_profile.rows)
products = sum(r["forward_ms"] + r["backward_ms"] for r in lenet_profile.rows if r["kind"] in ("Conv2d", "Linear"))
print(
    f"{step_flops / 1e6:.1f} MFLOP per step (the count by hand: {step_by_hand / 1e6:.1f} for the products alone); "
    f"the convolutions and linear layers take {100 * products / lenet_profile.step_ms:.0f} % of the step"
)

# %% [markdown]
# ## 4. A VGG-style block
# Two 3 x 3 convolutions with batch norm and ReLU, then a 1 x 1 convolution that halves the
# channels and a 2 x 2 max pooling, on a batch of 32 images of 32 x 32 pixels with 32
# channels (a CIFAR-sized feature map). The 3 x 3 convolutions do 9 times the work of the
# 1 x 1 per output and move about the same bytes: their intensity is about 9 times higher.

# %%
N = 8 if args.quick else 32
block = nn.Sequential(
    nn.Conv2d(32, 32, 3, padding=1, bias=False),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    nn.Conv2d(32, 32, 3, padding=1, bias=False),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    nn.Conv2d(32, 16, 1),
    nn.MaxPool2d(2),
    nn.Flatten(),
)
xb = rng.standard_normal((N, 32, 32, 32), dtype=np.float32)
target = rng.standard_normal((N, 16 * 16 * 16), dtype=np.float32)
block_profile = minidl.profile(block, xb, nn.MSELoss(), target, steps=steps)
print(block_profile)

fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
lenet_profile.plot(axes[0])
axes[0].set_title(f"LeNet-5 training step, batch 64: {lenet_profile.step_ms:.1f} ms")
block_profile.plot(axes[1])
axes[1].set_title(f"VGG-style block, batch {N}: {block_profile.step_ms:.1f} ms")
fig.tight_layout()
save(fig, "17_profiles.png")

# %% [markdown]
# ## 5. The roofline
# Every layer of both profiles at its intensity (x) and achieved rate (y), under the roof
# of this machine. The element-wise layers and the pooling sit far left: they cannot go
# faster than the memory lets them, whatever the kernel. The 3 x 3 convolutions sit right
# of (or near) the ridge: for them the gap to the roof is the room a better kernel has.

# %%
fig, ax = plt.subplots(figsize=(8, 6))
lenet_profile.roofline(peak, bandwidth, ax)
for r in block_profile.rows:
    r["name"] = "vgg." + r["name"]
block_profile.roofline(peak, bandwidth, ax, roof=False)
ax.set_title(f"roofline of this machine: peak {peak:.0f} GFLOP/s, bandwidth {bandwidth:.1f} GB/s")
fig.tight_layout()
save(fig, "17_roofline.png")
for r in block_profile.rows:
    if r["flops"]:
        intensity = r["flops"] / r["bytes"]
        bound = "memory-bound" if intensity < ridge else "compute-bound"
        print(
            f"{r['name']:7s} {r['kind']:12s} intensity {intensity:7.2f} FLOP/byte: {bound}, {r['gflops']:6.1f} GFLOP/s"
        )

# %% [markdown]
# ## 6. Threads
# minidl's parallelism comes from its own threads: a kernel's samples, channels or planes
# are cut into one chunk per thread, which `run_chunks` runs side by side (serial Numba
# kernels that release the GIL), and every BLAS call runs on one thread: two thread pools
# on the same cores fight (`minidl/_threads.py`). `NUMBA_NUM_THREADS` (or
# `numba.set_num_threads`) sets how many threads minidl uses. Memory has a policy too
# (`minidl/_memory.py`): a step frees every array it allocated, and the C library would
# give those pages back to the operating system, which hands the next step fresh pages to
# zero on first touch (a "page fault" per 4 KiB: about 280 in a LeNet-5 step, measured
# at 0.5-0.8 ms of it). minidl asks it to keep up to 64 MiB of freed memory for reuse.
# The LeNet-5 step on one thread and on all of them:

# %%
for n_threads in sorted({1, threads}):
    numba.set_num_threads(n_threads)
    step_ms = minidl.profile(lenet(), x, nn.SoftmaxCrossEntropy(), y, steps=steps).step_ms
    print(f"{n_threads} thread(s): {step_ms:.2f} ms per LeNet-5 step")
numba.set_num_threads(threads)

# %% [markdown]
# ## 7. Seven things the processor cares about
# A loop that reads as the math is not always a loop the processor runs fast. Seven cases
# in minidl's own kernels, each a few lines, each measured on 2 cores and one thread:
#
# - **Vector instructions need a known stride.** im2col copies
#   `xp[c, oh*sh + i, ow*sw + j]`; with the stride `sw` known only at run time the
#   compiler reads one pixel at a time, written `ow + j` for stride 1 it copies several
#   at once with vector instructions: 3.9 -> 1.6 ms for 64 images of 32 x 16 x 16
#   (`im2col_sample` in `minidl/ops/im2col.py` keeps both loops).
# - **A jump the processor cannot guess is expensive.** Max pooling compares every pixel
#   with the best so far; on real data that comparison is a coin toss, and each wrong
#   guess throws away the work begun on the wrong path. Keeping the value with `max()`
#   outside the `if` (only the index inside) halved LeNet-5's first pooling,
#   1.48 -> 0.71 ms (`keep_max` in `minidl/ops/maxpool2d.py`).
# - **A loop of two steps is not free.** A 2x2 pooling window is two loops of two steps
#   for every output; with the sizes known only at run time, each step pays for the
#   loop's counter and test. Calling the same function with the constants `2, 2` (for
#   2x2 windows without padding, the pooling of nearly every network) lets the compiler
#   write out the four pixels: LeNet-5's first pooling 0.61 -> 0.26 ms
#   (`maxpool2d_forward_kernel`); average pooling of 64 x 32 x 32 x 32, 3.4 -> 0.8 ms.
# - **An integer division is one of the slowest instructions.** Max pooling's backward
#   sends each gradient to its argmax, a flat index k = h*W + w. Written
#   `dx[n, c, k // W, k % W]`, it paid a division for every output; with each plane of dx
#   viewed flat, (N, C, H*W), it writes `dx[n, c, k]` and divides nothing: LeNet-5's first
#   pooling backward 0.21 -> 0.06 ms (`maxpool2d_backward_kernel`).
# - **A sum is a chain.** `s += x[i]` waits for the previous addition to finish, because
#   floating-point addition is not associative and the compiler keeps the written order;
#   allowed to reorder (`fastmath={"reassoc"}`), it keeps partial sums side by side in
#   vector registers: batch norm's training forward 1.3 -> 0.37 ms
#   (`minidl/ops/batchnorm.py`).
# - **A short copy costs more to start than to do.** LeNet-5's second convolution has
#   outputs 10 pixels wide, so im2col copies runs of 10 floats, and each run pays for
#   setting up its vector copy. At stride 1 the columns can instead be laid out in "wide
#   rows", one column for every position of the padded image's rows, so that each row of
#   the columns is one long run of the image; the few columns of windows that wrap past
#   the right edge are computed and thrown away. That layer's forward 0.95 -> 0.71 ms and
#   its input gradient 1.08 -> 0.77 ms, the whole LeNet-5 step 9 % faster
#   (`im2col_wide_sample` in `minidl/ops/im2col.py`, `_wide` in `minidl/ops/conv2d.py`).
# - **The fastest copy is none.** In wide rows, the rows of the columns that belong to one
#   kernel element (i, j) are the padded image itself, shifted by i rows and j pixels: a
#   block of memory that is already there. BLAS reads a block of a bigger array in place
#   if it is told the distance between two rows, so at stride 1 the product w_mat @ cols
#   can be KH*KW smaller products, each weight slice w[:, :, i, j] times the shifted
#   image, added up, with no im2col at all (`wide_forward_kernel` in
#   `minidl/ops/conv2d.py`, `gemm` in `minidl/_blas.py`). Each small product sums over the
#   C input channels only, so it pays from 8 channels on: a 3x3 convolution 32 -> 64
#   channels on 32 x 32 images, forward 0.76-0.79 of im2col's time, on 16 x 16 0.84-0.87.
#
# The first five leave the FLOPs of the roofline above as they are: they move a kernel up
# towards its roof. The sixth adds 36 % to that layer's matrix products and still wins,
# because the copies, not the products, were its slow part; for outputs 16 or more pixels
# wide it no longer pays, and minidl keeps im2col's own layout there. The seventh is the
# sixth taken to its end: the wide rows are never copied, and the extra columns are all
# that is left of im2col.

# %%
headline("lenet_mflop_per_image", step_flops / 64 / 1e6)
