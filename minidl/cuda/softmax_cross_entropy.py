"""Softmax cross-entropy on the GPU (the math, the log-sum-exp trick and the shapes:
``minidl/ops/softmax_cross_entropy.py``). Logits are viewed as (N, K, P), P = 1 or H * W.

    softmax:   one thread per position (n, p): its max, its sum of exponentials, its K
               probabilities and its log-sum-exp (``softmax_position``, the CPU's function)
    loss:      one block: thread t adds w[c] (lse - z[n, c, p]) and w[c] over every
               THREADS-th position, the shared-memory tree adds them up
    backward:  the same tree for W = sum w[c], then one thread per position writes its K
               gradients
"""

import math

import numpy as np
from numba import cuda, float64

from ..device import as_array_like, as_ncl, empty, to_device
from ..ops import softmax_cross_entropy
from ..ops.softmax_cross_entropy import _weights
from ._launch import THREADS, from_cpu, launch, launch_rows
from ._reduce import block_sum

softmax_position = from_cpu(softmax_cross_entropy.softmax_position)


@cuda.jit
def softmax_kernel(z, probs, lse):
    """Thread q: position (n, p) = (q // P, q % P); probs[n, :, p] and lse[n, p] (the CPU
    file's ``softmax_position``)."""
    N, K, P = z.shape
    for q in range(cuda.grid(1), N * P, cuda.gridsize(1)):
        n, p = q // P, q % P
        lse[n, p] = softmax_position(z, n, p, probs)


@cuda.jit
def cross_entropy_kernel(z, lse, t, w, loss):
    """One block: the sums of w[c] (lse[n, p] - z[n, c, p]) and of w[c], c = t[n, p], over
    all positions; thread 0 writes loss[0] = their ratio (NaN when the weights sum to 0)."""
    s_total = cuda.shared.array(THREADS, float64)
    s_W = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, K, P = z.shape
    total = 0.0
    W = 0.0
    for q in range(tid, N * P, cuda.blockDim.x):
        n, p = q // P, q % P
        c = t[n, p]
        total += w[c] * (lse[n, p] - z[n, c, p])
        W += w[c]
    s_total[tid] = total
    s_W[tid] = W
    total = block_sum(s_total, tid, THREADS)
    W = block_sum(s_W, tid, THREADS)
    if tid == 0:
        loss[0] = total / W if W > 0 else math.nan


@cuda.jit
def weight_sum_kernel(t, w, W):
    """One block: W[0] = sum over positions of w[t[n, p]] (the weighted mean's divisor)."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, P = t.shape
    acc = 0.0
    for q in range(tid, N * P, cuda.blockDim.x):
        acc += w[t[q // P, q % P]]
    s[tid] = acc
    total = block_sum(s, tid, THREADS)
    if tid == 0:
        W[0] = total


@cuda.jit
def cross_entropy_backward_kernel(probs, t, w, W, dz):
    """Thread q: position (n, p); dz[n, k, p] = w[c] / W * (probs[n, k, p] - [k == c])."""
    N, K, P = probs.shape
    for q in range(cuda.grid(1), N * P, cuda.gridsize(1)):
        n, p = q // P, q % P
        c = t[n, p]
        scale = w[c] / W[0]
        for k in range(K):
            dz[n, k, p] = scale * probs[n, k, p]
        dz[n, c, p] -= scale


def _labels(labels, z):
    """Labels (N,) or (N, H, W), from either side, as an int64 device array (N, P)."""
    return as_array_like(labels, like=z, dtype=np.int64).reshape(z.shape[0], z.shape[2])


def _softmax(z):
    N, K, P = z.shape
    probs = empty((N, K, P), z.dtype, like=z)
    lse = empty((N, P), np.float64, like=z)
    launch(softmax_kernel, N * P, z, probs, lse)
    return probs, lse


def softmax(logits):
    """Class probabilities: softmax over axis 1 of logits (N, K) or (N, K, H, W)."""
    probs, _ = _softmax(as_ncl(logits))
    return probs.reshape(logits.shape)


def forward(logits, labels, class_weight=None):
    """Mean softmax cross-entropy of device logits. Returns (loss as a Python float, probs
    of the logits' shape); the loss is NaN when every label has weight 0."""
    z = as_ncl(logits)
    probs, lse = _softmax(z)
    loss = empty(1, np.float64, like=z)
    w = to_device(_weights(class_weight, z.shape[1], z.dtype), "cuda")
    launch_rows(cross_entropy_kernel, 1, z, lse, _labels(labels, z), w, loss)
    return float(loss.copy_to_host()[0]), probs.reshape(logits.shape)


def backward(probs, labels, class_weight=None):
    """Gradient of the mean (or weighted mean) loss with respect to the logits."""
    pr = as_ncl(probs)
    t = _labels(labels, pr)
    w = to_device(_weights(class_weight, pr.shape[1], pr.dtype), "cuda")
    W = empty(1, np.float64, like=pr)
    launch_rows(weight_sum_kernel, 1, t, w, W)
    dz = empty(pr.shape, pr.dtype, like=pr)
    launch(cross_entropy_backward_kernel, pr.shape[0] * pr.shape[2], pr, t, w, W, dz)
    return dz.reshape(probs.shape)
