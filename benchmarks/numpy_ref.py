"""The NumPy reference of the benchmarks: the layers written the obvious vectorised way.

This is what a student would write in plain NumPy without Numba, and what minidl is
measured against: convolution as im2col (``sliding_window_view`` gives every window
without copying, ``tensordot`` copies them into the im2col matrix and calls one BLAS
product) and col2im as a loop over the KH*KW kernel positions; pooling by reshaping the
non-overlapping windows into an axis of their own; batch norm with reductions over
(N, H, W). Each layer has ``forward(x)`` and ``backward(dy) -> dx`` and keeps its
parameter gradients in ``grads`` (same order as ``params``), so that a whole network can
be stepped like a minidl ``Sequential``.

The reference only has to cover the configurations the benchmark times: pooling with
stride = kernel size, no padding, and a height and width that the kernel divides.
``run.py`` checks every layer and every network against minidl's output before timing.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Conv2d:
    """y[n, co, oh, ow] = b[co] + sum_{c, i, j} w[co, c, i, j] x_pad[n, c, oh*s + i, ow*s + j]."""

    def __init__(self, w, b, stride=1, padding=0):
        self.params = [w] if b is None else [w, b]  # no bias: the layer before a batch norm
        self.stride, self.padding = stride, padding

    def _windows(self, x):
        p, s = self.padding, self.stride
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        KH, KW = self.params[0].shape[2:]
        # (N, C, OH, OW, KH, KW): a view, no copy yet
        return sliding_window_view(x_pad, (KH, KW), axis=(2, 3))[:, :, ::s, ::s]

    def forward(self, x):
        w = self.params[0]
        self.x, self.win = x, self._windows(x)
        y = np.tensordot(self.win, w, axes=([1, 4, 5], [1, 2, 3]))  # im2col + GEMM: (N, OH, OW, C_out)
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        return y + self.params[1][None, :, None, None] if len(self.params) == 2 else y

    def backward(self, dy):
        w = self.params[0]
        N, C, H, W = self.x.shape
        KH, KW = w.shape[2:]
        OH, OW = dy.shape[2:]
        p, s = self.padding, self.stride
        dw = np.tensordot(dy, self.win, axes=([0, 2, 3], [0, 2, 3]))  # (C_out, C, KH, KW)
        db = dy.sum(axis=(0, 2, 3))
        dcols = np.tensordot(dy, w, axes=([1], [0]))  # (N, OH, OW, C, KH, KW) = W^T dY
        dx_pad = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dy.dtype)
        for i in range(KH):  # col2im: add each kernel position's column back onto its pixels
            for j in range(KW):
                dx_pad[:, :, i : i + s * OH : s, j : j + s * OW : s] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        self.grads = [dw, db][: len(self.params)]
        return dx_pad[:, :, p : p + H, p : p + W]


class ConvTranspose2d:
    """The adjoint of Conv2d, w (C_in, C_out, KH, KW) as in PyTorch:
    y[n, co, h*s - p + i, w*s - p + j] += x[n, ci, h, w] w[ci, co, i, j] (+ b[co])."""

    def __init__(self, w, b, stride=1, padding=0):
        self.params = [w, b]
        self.stride, self.padding = stride, padding

    def forward(self, x):
        w, b = self.params
        self.x = x
        N, _, H, W = x.shape
        C_out, KH, KW = w.shape[1:]
        p, s = self.padding, self.stride
        OH, OW = (H - 1) * s + KH, (W - 1) * s + KW  # before cropping the padding
        y = np.zeros((N, C_out, OH, OW), dtype=x.dtype)
        for i in range(KH):  # col2im: each kernel position adds x w[:, :, i, j] onto its pixels
            for j in range(KW):
                y[:, :, i : i + s * H : s, j : j + s * W : s] += np.tensordot(
                    x, w[:, :, i, j], axes=([1], [0])
                ).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y[:, :, p : OH - p, p : OW - p]) + b[None, :, None, None]

    def backward(self, dy):
        w, _ = self.params
        p, s = self.padding, self.stride
        KH, KW = w.shape[2:]
        dy_pad = np.pad(dy, ((0, 0), (0, 0), (p, p), (p, p)))
        H, W = self.x.shape[2:]
        win = sliding_window_view(dy_pad, (KH, KW), axis=(2, 3))[:, :, ::s, ::s][
            :, :, :H, :W
        ]  # (N, C_out, H, W, KH, KW)
        dx = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)  # a Conv2d forward of dy
        self.grads = [np.tensordot(self.x, win, axes=([0, 2, 3], [0, 2, 3])), dy.sum(axis=(0, 2, 3))]
        return np.ascontiguousarray(dx)


class _Pool2d:
    """Non-overlapping k x k windows: x (N, C, OH*k, OW*k) seen as (N, C, OH, OW, k*k)."""

    params = grads = ()

    def __init__(self, k):
        self.k = k

    def _windows(self, x):
        N, C, H, W = x.shape
        k = self.k
        assert H % k == 0 and W % k == 0, "the NumPy reference pools only non-overlapping, exactly tiling windows"
        return x.reshape(N, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // k, W // k, k * k)

    def _unwindow(self, d):
        N, C, OH, OW, _ = d.shape
        k = self.k
        return d.reshape(N, C, OH, OW, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, OH * k, OW * k)


class MaxPool2d(_Pool2d):
    """y = the max of each window; backward puts dy at the (first) arg-max."""

    def forward(self, x):
        win = self._windows(x)
        self.argmax = win.argmax(axis=-1)[..., None]
        return np.take_along_axis(win, self.argmax, axis=-1)[..., 0]

    def backward(self, dy):
        d = np.zeros(dy.shape + (self.k * self.k,), dtype=dy.dtype)
        np.put_along_axis(d, self.argmax, dy[..., None], axis=-1)
        return self._unwindow(d)


class AvgPool2d(_Pool2d):
    """y = the mean of each window; backward spreads dy / (k*k) over it."""

    def forward(self, x):
        return self._windows(x).mean(axis=-1)

    def backward(self, dy):
        d = np.broadcast_to((dy / (self.k * self.k))[..., None], dy.shape + (self.k * self.k,))
        return self._unwindow(d)


class BatchNorm2d:
    """Training mode: x_hat = (x - mean) / sqrt(var + eps), y = gamma x_hat + beta per channel."""

    def __init__(self, gamma, beta, eps=1e-5):
        self.params = [gamma, beta]
        self.eps = eps

    def forward(self, x):
        gamma, beta = self.params
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std
        return gamma[None, :, None, None] * self.x_hat + beta[None, :, None, None]

    def backward(self, dy):
        gamma, _ = self.params
        m = dy.size // dy.shape[1]
        dx_hat = dy * gamma[None, :, None, None]
        # the compact form: dx = (m dx_hat - sum dx_hat - x_hat sum(dx_hat x_hat)) / (m sqrt(var + eps))
        dx = (self.inv_std / m) * (
            m * dx_hat
            - dx_hat.sum(axis=(0, 2, 3), keepdims=True)
            - self.x_hat * (dx_hat * self.x_hat).sum(axis=(0, 2, 3), keepdims=True)
        )
        self.grads = [(dy * self.x_hat).sum(axis=(0, 2, 3)), dy.sum(axis=(0, 2, 3))]
        return dx


class Linear:
    """y = x w^T + b, w (out, in)."""

    def __init__(self, w, b):
        self.params = [w, b]

    def forward(self, x):
        self.x = x
        return x @ self.params[0].T + self.params[1]

    def backward(self, dy):
        self.grads = [dy.T @ self.x, dy.sum(axis=0)]
        return dy @ self.params[0]


class ReLU:
    params = grads = ()

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


class Flatten:
    params = grads = ()

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


def softmax_cross_entropy(logits, labels):
    """The mean cross-entropy of softmax(logits) and d loss / d logits = (p - onehot) / N."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    N = len(labels)
    loss = -log_p[np.arange(N), labels].mean()
    dz = np.exp(log_p)
    dz[np.arange(N), labels] -= 1
    return float(loss), dz / N


class Network:
    """A list of layers with forward, backward, and SGD / Adam steps in PyTorch's equations."""

    def __init__(self, layers):
        self.layers = layers
        self.t = 0

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def pairs(self):
        return [(p, g) for layer in self.layers for p, g in zip(layer.params, layer.grads)]

    def sgd_step(self, lr):
        for p, g in self.pairs():
            p -= lr * g

    def adam_step(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        if self.t == 0:
            self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p, _ in self.pairs()]
        self.t += 1
        for (p, g), (m, v) in zip(self.pairs(), self.moments):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            m_hat = m / (1 - beta1**self.t)
            v_hat = v / (1 - beta2**self.t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)

    def train_step(self, x, labels, optimizer="sgd", lr=0.01):
        loss, dlogits = softmax_cross_entropy(self.forward(x), labels)
        self.backward(dlogits)
        if optimizer == "sgd":
            self.sgd_step(lr)
        else:
            self.adam_step(lr)
        return loss


def from_minidl(model):
    """A NumPy network with copies of the weights of a minidl ``Sequential`` of
    Conv2d / ConvTranspose2d / BatchNorm2d / ReLU / MaxPool2d / AvgPool2d / Flatten / Linear layers."""
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            assert layer.stride[0] == layer.stride[1] and layer.padding[0] == layer.padding[1]
            b = None if layer.bias is None else layer.bias.data.copy()
            layers.append(Conv2d(layer.weight.data.copy(), b, layer.stride[0], layer.padding[0]))
        elif kind == "ConvTranspose2d":
            assert layer.stride[0] == layer.stride[1] and layer.padding[0] == layer.padding[1]
            assert layer.output_padding == (0, 0)
            w, b = layer.weight.data.copy(), layer.bias.data.copy()
            layers.append(ConvTranspose2d(w, b, layer.stride[0], layer.padding[0]))
        elif kind == "BatchNorm2d":
            layers.append(BatchNorm2d(layer.weight.data.copy(), layer.bias.data.copy(), layer.eps))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            assert layer.stride == layer.kernel_size and layer.padding == (0, 0)
            assert layer.kernel_size[0] == layer.kernel_size[1]
            layers.append((MaxPool2d if kind == "MaxPool2d" else AvgPool2d)(layer.kernel_size[0]))
        elif kind == "Linear":
            layers.append(Linear(layer.weight.data.copy(), layer.bias.data.copy()))
        elif kind in ("ReLU", "Flatten"):
            layers.append(ReLU() if kind == "ReLU" else Flatten())
        else:
            raise TypeError(f"numpy_ref.from_minidl: no NumPy reference for {kind}")
    return Network(layers)
