# %% [markdown]
# # Tutorial 11: the same ops on a GPU, written as CUDA kernels
#
# A GPU runs one small function, a KERNEL, on thousands of threads at once. minidl's CUDA
# target (`minidl/cuda/`) has a kernel for every op of `minidl/ops/`; this tutorial reads
# four of them: the thread/block/grid model with ReLU, the convolution as one thread per
# output pixel, the tiled matrix product and the global-memory reads that its shared-memory
# tiles save (counted), and LeNet-5 (tutorial 05) trained with `model.to("cuda")`.
#
# Without an NVIDIA GPU it runs in the CUDA SIMULATOR (`NUMBA_ENABLE_CUDASIM=1`: every GPU
# thread becomes a Python thread, so every kernel can be stepped through in a debugger) at
# tiny sizes, and says so. Without the numba-cuda package (`pip install -e ".[cuda]"`) it
# only draws the counts that the formulas predict.
#
# Run: `python tutorials/11_cuda_kernels.py [--quick] [--out outputs]`


# %%
import importlib.util
import os
import shutil
import time

HAS_GPU = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidiactl")
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
if HAS_NUMBA_CUDA and not HAS_GPU:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before anything imports numba.cuda

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minidl  # noqa: E402
from minidl import nn, optim  # noqa: E402
from minidl.tutorial import headline, save, setup  # noqa: E402

args = setup("CUDA kernels")
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if not HAS_NUMBA_CUDA:
    print("numba-cuda is not installed: no kernel runs here, only the formulas (pip install -e '.[cuda]')")
elif SIMULATED:
    print("no GPU: every kernel runs in the CUDA simulator, one Python thread per GPU thread, at tiny sizes")

# %% [markdown]
# ## Threads, blocks, the grid: ReLU
#
# A kernel launch names a grid of BLOCKS of THREADS: `kernel[blocks, threads](args)`.
# Thread $t$ of block $b$ is the global thread $i = b \cdot \mathrm{blockDim} + t$
# (`cuda.grid(1)`), and the grid holds $\mathrm{gridsize} = \mathrm{blocks} \cdot \mathrm{blockDim}$
# threads. minidl's
# ReLU kernel (`minidl/cuda/relu.py`) is
#
#     for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
#         y[i] = 0 if x[i] < 0 else x[i]
#
# a GRID-STRIDE loop: thread $i$ does the elements $i, i + \mathrm{gridsize}, i + 2\,\mathrm{gridsize}, \dots$,
# so any grid covers every element exactly once. Below, 2 blocks of 4 threads do 20 elements, and each
# element records which thread computed it.

# %%
M, TILE = (16, 4) if SIMULATED or args.quick else (256, 16)
if HAS_NUMBA_CUDA:
    from numba import cuda

    @cuda.jit
    def relu_who(x, y, who):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            y[i] = 0 if x[i] < 0 else x[i]
            who[i] = cuda.grid(1)

    x = np.linspace(-1, 1, 20)
    y, who = cuda.device_array(20), cuda.device_array(20, dtype=np.int64)
    relu_who[2, 4](cuda.to_device(x), y, who)
    print("element:       ", " ".join(f"{i:2d}" for i in range(20)))
    print("global thread: ", " ".join(f"{t:2d}" for t in who.copy_to_host()))
    assert np.array_equal(y.copy_to_host(), np.maximum(x, 0))
    assert np.array_equal(
        minidl.to_device(minidl.dispatch.op("relu", cuda.to_device(x)).forward(cuda.to_device(x)), "cpu"),
        np.maximum(x, 0),
    )

# %% [markdown]
# ## The convolution: one thread per output pixel
#
# $$y_{n,o,h',w'} = b_o + \sum_{c,i,j} w_{o,c,i,j}\; x_{n,\,c,\,h' s - p + i,\,w' s - p + j}$$
#
# (tutorial 04). The most direct kernel gives each output pixel to one thread, which
# computes the triple sum; no two threads write the same place. minidl's own conv2d
# (`minidl/cuda/conv2d.py`) instead copies the windows into columns (im2col, one thread
# per entry) and does one tiled matrix product; both give the same y.

# %%
if HAS_NUMBA_CUDA:

    @cuda.jit
    def conv_direct(x, w, b, s, p, y):
        N, C_out, OH, OW = y.shape
        C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
        for q in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            n, co, oh, ow = q // (C_out * OH * OW), q // (OH * OW) % C_out, q // OW % OH, q % OW
            acc = b[co]
            for c in range(C):
                for i in range(KH):
                    for j in range(KW):
                        h, v = oh * s - p + i, ow * s - p + j
                        if 0 <= h < x.shape[2] and 0 <= v < x.shape[3]:
                            acc += w[co, c, i, j] * x[n, c, h, v]
            y[n, co, oh, ow] = acc

    xc = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    wc, bc = np.random.default_rng(1).standard_normal((3, 2, 3, 3)), np.zeros(3)
    yc = cuda.device_array((1, 3, 6, 6))
    conv_direct[2, 32](cuda.to_device(xc), cuda.to_device(wc), cuda.to_device(bc), 1, 1, yc)
    library = minidl.dispatch.op("conv2d", cuda.to_device(xc)).forward(
        cuda.to_device(xc), cuda.to_device(wc), cuda.to_device(bc), (1, 1), (1, 1)
    )
    print(
        "direct kernel = minidl's im2col + tiled GEMM:",
        np.allclose(yc.copy_to_host(), minidl.to_device(library, "cpu")),
    )

# %% [markdown]
# ## The tiled matrix product, and the reads it saves
#
# $C = AB$ with $A$ of shape $(M, K)$ and $B$ of shape $(K, N)$:
# $C_{rc} = \sum_{k} A_{rk} B_{kc}$. The textbook kernel: the thread of $C_{rc}$ reads row
# $r$ of $A$ and column $c$ of $B$ from GLOBAL memory (hundreds of cycles away): $2K$ reads
# per output, $2MNK$ in all. The tiled kernel (`minidl/cuda/_gemm.py`): a block of TILE x TILE
# threads owns a TILE x TILE tile of C and walks along k; at each step every thread copies
# ONE element of A and ONE of B into SHARED memory (on the chip), the block waits
# (`cuda.syncthreads()`), and every thread does TILE multiply-adds from shared memory.
# Each global read now serves TILE threads: $2MNK / \mathrm{TILE}$ reads, TILE times fewer. The two kernels below
# count their global reads with an atomic counter (a teaching device: it slows them down).

# %%
K = N = M
formula = {"textbook": 2 * M * N * K, "tiled": 2 * M * N * K // TILE}
counted = {}
if HAS_NUMBA_CUDA:
    from numba import float64

    @cuda.jit
    def matmul_textbook(A, B, C, reads):
        r, c = cuda.grid(2)
        if r < C.shape[0] and c < C.shape[1]:
            acc = 0.0
            for k in range(A.shape[1]):
                acc += A[r, k] * B[k, c]
                cuda.atomic.add(reads, 0, 2)
            C[r, c] = acc

    @cuda.jit
    def matmul_tiled(A, B, C, reads):
        sA = cuda.shared.array((TILE, TILE), float64)
        sB = cuda.shared.array((TILE, TILE), float64)
        ty, tx = cuda.threadIdx.x, cuda.threadIdx.y
        r, c = cuda.grid(2)
        acc = 0.0
        for k0 in range(0, A.shape[1], TILE):
            sA[ty, tx] = A[r, k0 + tx]  # one global read of A ...
            sB[ty, tx] = B[k0 + ty, c]  # ... and one of B per thread and step
            cuda.atomic.add(reads, 0, 2)
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sA[ty, kk] * sB[kk, tx]
            cuda.syncthreads()
        C[r, c] = acc

    A = np.random.default_rng(2).standard_normal((M, K))
    B = np.random.default_rng(3).standard_normal((K, N))
    for name, kernel in (("textbook", matmul_textbook), ("tiled", matmul_tiled)):
        C, reads = cuda.device_array((M, N)), cuda.to_device(np.zeros(1, dtype=np.int64))
        start = time.perf_counter()
        kernel[(M // TILE, N // TILE), (TILE, TILE)](cuda.to_device(A), cuda.to_device(B), C, reads)
        np.testing.assert_allclose(C.copy_to_host(), A @ B, rtol=1e-10, atol=1e-12)
        counted[name] = int(reads.copy_to_host()[0])
        print(
            f"{name:8s} kernel: {counted[name]:>10,d} global reads counted, formula {formula[name]:>10,d} "
            f"({time.perf_counter() - start:.2f} s)"
        )

reads = counted or formula  # counted in the run when a kernel ran, else the formula
headline("textbook_reads_over_tiled_reads", reads["textbook"] / reads["tiled"])

fig, ax = plt.subplots(figsize=(6, 3.5))
names = list(formula)
ax.bar(np.arange(2) - 0.2, [formula[n] for n in names], 0.4, label="formula 2MNK, 2MNK/TILE")
if counted:
    ax.bar(np.arange(2) + 0.2, [counted[n] for n in names], 0.4, label="counted in the run")
ax.set_xticks(range(2), names)
ax.set_ylabel("global-memory reads")
ax.set_title(f"C = A B, M = N = K = {M}, TILE = {TILE}")
ax.legend()
fig.tight_layout()
save(fig, "11_tiled_reads.png")

# %% [markdown]
# ## LeNet-5 on the GPU
#
# Tutorial 05's network. `model.to("cuda")` moves every parameter, gradient and buffer;
# `fit` moves each batch; the optimizer steps on the device (`minidl/cuda/adam.py`);
# what comes back (losses, History, `predict`) is on the host. On a GPU this trains on
# the digits scaled to 28x28 for a few epochs; in the simulator, 12x12 digits (the
# 8x8 digits padded: the same layers, smaller maps), two images for one step, only to show that the
# same lines run.

# %%
if HAS_NUMBA_CUDA:
    x, y = minidl.data.load_digits()
    if SIMULATED:
        x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 8x8 -> 12x12
    else:
        x = np.pad(x.repeat(3, axis=2).repeat(3, axis=3), ((0, 0), (0, 0), (2, 2), (2, 2)))  # 8x8 -> 28x28
    side = ((x.shape[2] // 2) - 4) // 2  # the maps' size after the second pooling: 5 for 28x28
    n_train = 2 if SIMULATED else (512 if args.quick else 1500)
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    ).to("cuda")
    history = minidl.fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.Adam(model.parameters(), lr=1e-3),
        (x[:n_train], y[:n_train]),
        val_data=(x[1500 : 1500 + n_train], y[1500 : 1500 + n_train]),
        epochs=1 if SIMULATED or args.quick else 5,
        batch_size=2 if SIMULATED else 64,
        verbose=True,
    )
    print(f"LeNet-5 on 'cuda'{' (simulated)' if SIMULATED else ''}: {history}")
