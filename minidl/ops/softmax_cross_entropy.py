r"""Softmax cross-entropy, fused: the loss of a classifier that outputs K scores (logits).

In symbols:

$$p_{k} = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad \ell = -\log p_t = \log \sum_j e^{z_j} - z_t, \qquad
  L = \frac{\sum \omega_t\, \ell}{\sum \omega_t}, \qquad \frac{\partial L}{\partial z_k} = \frac{\omega_t}{\sum \omega_t}\, \big(p_k - [k = t]\big)$$

per position, with true class $t$ and class weights $\omega$ (all 1 by default: the plain mean).

Shapes. Logits z of shape (N, K) with integer labels t of shape (N,): one class per sample;
or z of shape (N, K, H, W) with labels (N, H, W): one class per pixel (segmentation).
Both are the same computation on z viewed as (N, K, P), with P = 1 or P = H * W
positions per sample; below, "position" (n, p) is one sample, or one pixel of one sample.

Forward. At each position the softmax turns the K scores into probabilities

    probs[n, k, p] = exp(z[n, k, p]) / sum_j exp(z[n, j, p])

and the loss there is the negative log-probability of the true class c = t[n, p]:

    l[n, p] = -log probs[n, c, p] = log sum_j exp(z[n, j, p]) - z[n, c, p]

exp(1000) overflows, so the log-sum-exp is computed after subtracting the largest score
m[n, p] = max_j z[n, j, p] (which changes nothing, since the softmax is invariant to adding
a constant to all K scores):

    s[n, p] = sum_j exp(z[n, j, p] - m[n, p])          (each exp <= 1, one of them = 1: 1 <= s <= K)
    probs[n, k, p] = exp(z[n, k, p] - m[n, p]) / s[n, p]
    lse[n, p] = m[n, p] + log s[n, p]                  (the log-sum-exp, kept in float64)
    l[n, p] = lse[n, p] - z[n, c, p]

The loss is the mean over all N * P positions, or, with class weights w (K,) (PyTorch's
``weight=``), the weighted mean

    L = sum_{n,p} w[t[n, p]] * l[n, p] / W,      W = sum_{n,p} w[t[n, p]]

(w = 1 everywhere gives W = N * P and the plain mean).

Backward. d lse[n, p] / d z[n, k, p] = probs[n, k, p], and d z[n, c, p] / d z[n, k, p] is 1
for k = c and 0 otherwise, so

    dz[n, k, p] = dL/dz[n, k, p] = w[c] / W * (probs[n, k, p] - [k == c]),    c = t[n, p]

Fusing the softmax with the loss gives this short form; at each position the gradient
sums to zero over k (the probabilities sum to 1, the indicator too).

Like every op, this one assumes valid input (labels in [0, K), W > 0, finite logits):
``nn.SoftmaxCrossEntropy`` checks all of it before calling here.
"""

import math

import numpy as np
from numba import njit

from ..device import as_ncl, empty


@njit(cache=True, inline="always")
def softmax_position(z, n, p, probs):
    """At position (n, p): probs[n, k, p] = exp(z[n, k, p] - m) / s for every k; returns
    the log-sum-exp m + log s, with m = max_k z[n, k, p] and s = sum_k exp(z[n, k, p] - m),
    so that no exp overflows. (The CUDA kernel calls this same function, one thread per
    position.)"""
    K = z.shape[1]
    m = z[n, 0, p]
    for k in range(1, K):
        if z[n, k, p] > m:
            m = z[n, k, p]
    s = np.float64(0.0)  # sums are accumulated in float64
    for k in range(K):
        e = math.exp(z[n, k, p] - m)
        probs[n, k, p] = e
        s += e
    for k in range(K):
        probs[n, k, p] = probs[n, k, p] / s
    return m + math.log(s)


@njit(cache=True)
def softmax_kernel(z, probs, lse):
    """probs (N, K, P) and lse (N, P) of z (N, K, P), position by position; lse in float64
    (in float32, m + log s would round log s away when |m| is large, 1e4 say). Both are
    overwritten."""
    N, K, P = z.shape
    for n in range(N):
        for p in range(P):
            lse[n, p] = softmax_position(z, n, p, probs)


@njit(cache=True)
def cross_entropy_kernel(z, lse, t, w, loss):
    """loss[0] = sum_{n,p} w[t[n,p]] * (lse[n, p] - z[n, t[n,p], p]) / sum_{n,p} w[t[n,p]].

    0 / 0 = NaN when every label of the batch has weight 0 (the layer reports it).
    """
    N, K, P = z.shape
    total = np.float64(0.0)
    W = np.float64(0.0)
    for n in range(N):
        for p in range(P):
            c = t[n, p]
            total += w[c] * (lse[n, p] - z[n, c, p])
            W += w[c]
    loss[0] = total / W if W > 0 else np.nan


@njit(cache=True)
def cross_entropy_backward_kernel(probs, t, w, dz):
    """dz[n, k, p] = w[c] / W * (probs[n, k, p] - [k == c]), c = t[n, p]; dz is overwritten."""
    N, K, P = probs.shape
    W = np.float64(0.0)
    for n in range(N):
        for p in range(P):
            W += w[t[n, p]]
    for n in range(N):
        for p in range(P):
            c = t[n, p]
            scale = w[c] / W
            for k in range(K):
                dz[n, k, p] = scale * probs[n, k, p]
            dz[n, c, p] -= scale


def _as_npk(a):
    """View (N, K) as (N, K, 1) and (N, K, H, W) as (N, K, H * W), C-contiguous."""
    return as_ncl(np.ascontiguousarray(a))


def _labels_np(labels, N, P):
    """Labels (N,) or (N, H, W) as a C-contiguous int64 array (N, P)."""
    return np.ascontiguousarray(labels, dtype=np.int64).reshape(N, P)


def _weights(class_weight, K, dtype):
    """The class weights (K,) in the logits' dtype; all ones when None."""
    if class_weight is None:
        return np.ones(K, dtype=dtype)
    return np.ascontiguousarray(class_weight, dtype=dtype)


def _softmax(z):
    """probs (N, K, P) and lse (N, P) of z (N, K, P), newly allocated."""
    N, K, P = z.shape
    probs = empty((N, K, P), z.dtype, like=z)
    lse = empty((N, P), np.float64, like=z)
    softmax_kernel(z, probs, lse)
    return probs, lse


def softmax(logits):
    """Class probabilities: softmax over axis 1 of logits (N, K) or (N, K, H, W).

    Returns an array of the logits' shape and dtype whose entries along axis 1 sum to 1.
    """
    probs, _ = _softmax(_as_npk(logits))
    return probs.reshape(np.shape(logits))


def forward(logits, labels, class_weight=None):
    """Mean softmax cross-entropy.

    logits: (N, K) or (N, K, H, W) float32/float64; labels: (N,) or (N, H, W) integers in
    [0, K); class_weight: (K,) or None. Returns (loss as a Python float, probs of the
    logits' shape and dtype), the probabilities being what ``backward`` needs. The loss
    is NaN when every label has weight 0 (the weighted mean is then undefined).
    """
    z = _as_npk(logits)
    N, K, P = z.shape
    probs, lse = _softmax(z)
    loss = empty(1, np.float64, like=z)
    cross_entropy_kernel(z, lse, _labels_np(labels, N, P), _weights(class_weight, K, z.dtype), loss)
    return float(loss[0]), probs.reshape(np.shape(logits))


def backward(probs, labels, class_weight=None):
    """Gradient of the mean (or weighted mean) loss with respect to the logits.

    probs: forward's probabilities (N, K) or (N, K, H, W); labels and class_weight as in
    forward. Returns dlogits, same shape and dtype as probs.
    """
    pr = _as_npk(probs)
    N, K, P = pr.shape
    dz = empty(pr.shape, pr.dtype, like=pr)
    cross_entropy_backward_kernel(pr, _labels_np(labels, N, P), _weights(class_weight, K, pr.dtype), dz)
    return dz.reshape(np.shape(probs))
