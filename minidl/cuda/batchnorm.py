"""Batch normalization on the GPU (the equations, including the four backward equations
of Ioffe and Szegedy (2015) and their compact form: ``minidl/ops/batchnorm.py``). x is viewed as
(N, C, L), L = 1 or H * W: channel c has m = N * L values.

    per-channel sums (mean, variance, the backward sums)   one block per channel: its
                                                            threads take every THREADS-th
                                                            value, a shared-memory tree
                                                            adds them (``_reduce.py``)
    everything per element (x_hat, y, dx)                   one thread per element
"""

import math

from numba import cuda, float64

from ..device import as_ncl, empty
from ._launch import THREADS, launch, launch_rows
from ._reduce import block_sum


@cuda.jit
def batchnorm_stats_kernel(x, mean, var):
    """Block c: mean[c] = mu_B = 1/m sum_i x_i, then var[c] = 1/m sum_i (x_i - mu_B)^2."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, C, L = x.shape
    m = N * L
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        acc = 0.0
        for q in range(tid, m, cuda.blockDim.x):
            acc += x[q // L, c, q % L]
        s[tid] = acc
        mu = block_sum(s, tid, THREADS) / m
        acc = 0.0
        for q in range(tid, m, cuda.blockDim.x):
            acc += (x[q // L, c, q % L] - mu) ** 2
        s[tid] = acc
        sigma2 = block_sum(s, tid, THREADS) / m
        if tid == 0:
            mean[c] = mu
            var[c] = sigma2


@cuda.jit
def batchnorm_normalize_kernel(x, gamma, beta, mean, var, eps, y, x_hat):
    """Thread q, element (n, c, l): x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps),
    y = gamma x_hat + beta."""
    N, C, L = x.shape
    for q in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        x_hat[n, c, l] = (x[n, c, l] - mean[c]) / math.sqrt(var[c] + eps)
        y[n, c, l] = gamma[c] * x_hat[n, c, l] + beta[c]


@cuda.jit
def batchnorm_forward_eval_kernel(x, gamma, beta, running_mean, running_var, eps, y):
    """Thread q, element (n, c, l): y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    N, C, L = x.shape
    for q in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        scale = gamma[c] / math.sqrt(running_var[c] + eps)
        y[n, c, l] = scale * (x[n, c, l] - running_mean[c]) + beta[c]


@cuda.jit
def update_running_stats_kernel(running_mean, running_var, mean, var, m, momentum, new_mean, new_var):
    """Thread c: the running statistics' update (the variance made unbiased by m / (m - 1))."""
    for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
        new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        new_var[c] = (1 - momentum) * running_var[c] + momentum * var[c] * (m / (m - 1))


@cuda.jit
def batchnorm_backward_sums_kernel(dy, x, gamma, mean, var, eps, dsigma2, dmu):
    """Block c: the first backward equations of Ioffe and Szegedy (2015),
    dl/dsigma_B^2 = sum_i dl/dx_hat_i (x_i - mu_B) (-1/2) (sigma_B^2 + eps)^(-3/2) and
    dl/dmu_B = sum_i dl/dx_hat_i (-1 / sqrt(sigma_B^2 + eps)) + dl/dsigma_B^2 sum_i -2 (x_i - mu_B) / m,
    with dl/dx_hat_i = dl/dy_i gamma."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, C, L = x.shape
    m = N * L
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        mu, sigma2 = mean[c], var[c]
        acc = 0.0
        for q in range(tid, m, cuda.blockDim.x):
            acc += dy[q // L, c, q % L] * gamma[c] * (x[q // L, c, q % L] - mu)
        s[tid] = acc
        ds2 = block_sum(s, tid, THREADS) * -0.5 * (sigma2 + eps) ** -1.5
        acc = 0.0
        for q in range(tid, m, cuda.blockDim.x):
            acc += dy[q // L, c, q % L] * gamma[c]
        s[tid] = acc
        s_dx_hat = block_sum(s, tid, THREADS)
        acc = 0.0
        for q in range(tid, m, cuda.blockDim.x):
            acc += -2.0 * (x[q // L, c, q % L] - mu)
        s[tid] = acc
        s_centered = block_sum(s, tid, THREADS)
        if tid == 0:
            dsigma2[c] = ds2
            dmu[c] = -s_dx_hat / math.sqrt(sigma2 + eps) + ds2 * s_centered / m


@cuda.jit
def batchnorm_backward_dx_kernel(dy, x, gamma, mean, var, eps, dsigma2, dmu, dx):
    """Thread q, element (n, c, l), the fourth equation:
    dl/dx_i = dl/dx_hat_i / sqrt(sigma_B^2 + eps) + dl/dsigma_B^2 2 (x_i - mu_B) / m + dl/dmu_B / m."""
    N, C, L = x.shape
    m = N * L
    for q in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        dx_hat = dy[n, c, l] * gamma[c]
        dx[n, c, l] = dx_hat / math.sqrt(var[c] + eps) + dsigma2[c] * 2.0 * (x[n, c, l] - mean[c]) / m + dmu[c] / m


@cuda.jit
def channel_sums_kernel(dy, x_hat, dgamma, dbeta):
    """Block c: dgamma[c] = sum_i dl/dy_i x_hat_i and dbeta[c] = sum_i dl/dy_i."""
    s = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    N, C, L = dy.shape
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        acc = 0.0
        for q in range(tid, N * L, cuda.blockDim.x):
            acc += dy[q // L, c, q % L] * x_hat[q // L, c, q % L]
        s[tid] = acc
        dg = block_sum(s, tid, THREADS)
        acc = 0.0
        for q in range(tid, N * L, cuda.blockDim.x):
            acc += dy[q // L, c, q % L]
        s[tid] = acc
        db = block_sum(s, tid, THREADS)
        if tid == 0:
            dgamma[c] = dg
            dbeta[c] = db


@cuda.jit
def batchnorm_backward_compact_kernel(dy, gamma, var, x_hat, eps, dgamma, dbeta, dx):
    """Thread q, element (n, c, l): dx = gamma / (m sigma) (m dy - sum dy - x_hat sum(dy x_hat)),
    with sum dy = dbeta[c] and sum(dy x_hat) = dgamma[c]."""
    N, C, L = dy.shape
    m = N * L
    for q in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        k = gamma[c] / (m * math.sqrt(var[c] + eps))
        dx[n, c, l] = k * (m * dy[n, c, l] - dbeta[c] - x_hat[n, c, l] * dgamma[c])


@cuda.jit
def batchnorm_backward_eval_kernel(dy, x, gamma, running_mean, running_var, eps, dx, x_hat):
    """Thread q, element (n, c, l): with s = 1 / sqrt(running_var + eps), dx = dy gamma s and
    x_hat = (x - running_mean) s (for dgamma)."""
    N, C, L = x.shape
    for q in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = q // (C * L), q // L % C, q % L
        s = 1.0 / math.sqrt(running_var[c] + eps)
        dx[n, c, l] = dy[n, c, l] * gamma[c] * s
        x_hat[n, c, l] = (x[n, c, l] - running_mean[c]) * s


def forward_train(x, gamma, beta, eps):
    """Batch normalization with the batch's statistics, on device arrays. Returns (y,
    cache) as on the CPU (the cache's arrays on the device)."""
    C = x.shape[1]
    y = empty(x.shape, x.dtype, like=x)
    x_hat = empty(x.shape, x.dtype, like=x)
    mean = empty(C, x.dtype, like=x)
    var = empty(C, x.dtype, like=x)
    launch_rows(batchnorm_stats_kernel, C, as_ncl(x), mean, var)
    launch(batchnorm_normalize_kernel, x.size, as_ncl(x), gamma, beta, mean, var, float(eps), as_ncl(y), as_ncl(x_hat))
    return y, {"x": x, "x_hat": x_hat, "mean": mean, "var": var, "eps": eps, "m": x.size // C}


def forward_eval(x, gamma, beta, running_mean, running_var, eps):
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, per channel."""
    y = empty(x.shape, x.dtype, like=x)
    launch(
        batchnorm_forward_eval_kernel, x.size, as_ncl(x), gamma, beta, running_mean, running_var, float(eps), as_ncl(y)
    )
    return y


def update_running_stats(running_mean, running_var, mean, var, m, momentum=0.1):
    """The new running statistics (new device arrays): see the CPU file."""
    new_mean = empty(running_mean.shape, running_mean.dtype, like=running_mean)
    new_var = empty(running_var.shape, running_var.dtype, like=running_var)
    launch(
        update_running_stats_kernel,
        mean.size,
        running_mean,
        running_var,
        mean,
        var,
        float(m),
        float(momentum),
        new_mean,
        new_var,
    )
    return new_mean, new_var


def _gradient_arrays(dy):
    C = dy.shape[1]
    return empty(dy.shape, dy.dtype, like=dy), empty(C, dy.dtype, like=dy), empty(C, dy.dtype, like=dy)


def backward(dy, gamma, cache):
    """The gradients of forward_train by the four equations: (dx, dgamma, dbeta)."""
    dx, dgamma, dbeta = _gradient_arrays(dy)
    C, eps = dy.shape[1], float(cache["eps"])
    dsigma2 = empty(C, float, like=dy)
    dmu = empty(C, float, like=dy)
    x, mean, var = as_ncl(cache["x"]), cache["mean"], cache["var"]
    launch_rows(batchnorm_backward_sums_kernel, C, as_ncl(dy), x, gamma, mean, var, eps, dsigma2, dmu)
    launch(batchnorm_backward_dx_kernel, dy.size, as_ncl(dy), x, gamma, mean, var, eps, dsigma2, dmu, as_ncl(dx))
    launch_rows(channel_sums_kernel, C, as_ncl(dy), as_ncl(cache["x_hat"]), dgamma, dbeta)
    return dx, dgamma, dbeta


def backward_compact(dy, gamma, cache):
    """The same gradients by the compact one-line form: (dx, dgamma, dbeta)."""
    dx, dgamma, dbeta = _gradient_arrays(dy)
    x_hat = as_ncl(cache["x_hat"])
    launch_rows(channel_sums_kernel, dy.shape[1], as_ncl(dy), x_hat, dgamma, dbeta)
    launch(
        batchnorm_backward_compact_kernel,
        dy.size,
        as_ncl(dy),
        gamma,
        cache["var"],
        x_hat,
        float(cache["eps"]),
        dgamma,
        dbeta,
        as_ncl(dx),
    )
    return dx, dgamma, dbeta


def backward_eval(dy, x, gamma, running_mean, running_var, eps):
    """The gradients of forward_eval: (dx, dgamma, dbeta)."""
    dx, dgamma, dbeta = _gradient_arrays(dy)
    x_hat = empty(x.shape, x.dtype, like=x)
    launch(
        batchnorm_backward_eval_kernel,
        x.size,
        as_ncl(dy),
        as_ncl(x),
        gamma,
        running_mean,
        running_var,
        float(eps),
        as_ncl(dx),
        as_ncl(x_hat),
    )
    launch_rows(channel_sums_kernel, dy.shape[1], as_ncl(dy), as_ncl(x_hat), dgamma, dbeta)
    return dx, dgamma, dbeta
