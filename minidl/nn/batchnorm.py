"""``BatchNorm1d`` and ``BatchNorm2d(num_features, eps=1e-5, momentum=0.1)``.

Training mode normalises each channel with the batch's statistics and updates the running
statistics (``running_mean``, ``running_var``: plain array attributes, in the state dict);
evaluation mode uses the running statistics. The equations, including the four backward
equations of Ioffe and Szegedy (2015), are in ``minidl/ops/batchnorm.py``; the layer trains
with their compact one-line form (``backward_compact``, tested equal to the four), which
reads each channel twice instead of three times.
"""

import numpy as np

from .. import dispatch
from .checks import (
    check_channels,
    check_float_array,
    check_grad_dtype,
    check_grad_shape,
    check_ndim,
    check_same_dtype,
    positive_int,
    real_number,
)
from .module import Layer, Parameter, replace_buffer


class _BatchNorm(Layer):
    """Shared by both: parameters weight (gamma) = 1 and bias (beta) = 0, buffers
    running_mean = 0 and running_var = 1, all (C,)."""

    buffer_names = ("running_mean", "running_var")
    ndims, layout = None, None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.eps = real_number(name, "eps", eps, 0.0, low_open=True)
        self.momentum = real_number(name, "momentum", momentum, 0.0, 1.0)
        self.num_features = positive_int(name, "num_features", num_features)
        self.weight = Parameter(np.ones(self.num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.num_features, dtype=np.float32))
        self.running_mean = np.zeros(self.num_features, dtype=np.float32)
        self.running_var = np.ones(self.num_features, dtype=np.float32)

    def state_shapes(self):
        C = (self.num_features,)
        return {"weight": C, "bias": C, "running_mean": C, "running_var": C}

    def forward(self, x):
        name = type(self).__name__
        self.check_state()
        check_float_array(name, x, device=self.device)
        check_ndim(name, x, self.ndims, self.layout)
        check_channels(name, x, self.num_features)
        check_same_dtype(name, x, self.weight)
        gamma, beta = self.weight.data, self.bias.data
        op = dispatch.op("batchnorm", x, gamma, beta, self.running_mean, self.running_var)
        if not self.training:
            self.save_for_backward(("eval", x))
            return op.forward_eval(x, gamma, beta, self.running_mean, self.running_var, self.eps)
        if x.size // x.shape[1] < 2:
            raise ValueError(
                f"{name}: training needs more than one value per channel to compute a variance, "
                f"got input shape {tuple(x.shape)} (use eval() for single samples)"
            )
        y, stats = op.forward_train(x, gamma, beta, self.eps)
        reduce = dispatch.op("reduce", stats["mean"])
        if reduce.count_nonfinite(stats["mean"]) or reduce.count_nonfinite(stats["var"]):
            # a NaN or inf anywhere in a channel (or values whose square overflows) shows here
            raise ValueError(
                f"{name}: the batch's mean or variance is NaN or infinite (the input holds NaN or inf, or values "
                f"too large); the running statistics were not updated from it (find where the values come from "
                f"with minidl.detect_anomaly())"
            )
        running_mean, running_var = op.update_running_stats(
            self.running_mean, self.running_var, stats["mean"], stats["var"], stats["m"], self.momentum
        )
        replace_buffer(self, "running_mean", running_mean)  # undone if a later layer of the pass fails
        replace_buffer(self, "running_var", running_var)
        self.save_for_backward(("train", stats))
        return y

    def backward(self, dy):
        name = type(self).__name__
        self.check_state()
        mode, saved = self.saved_for_backward()
        check_float_array(name, dy, "upstream gradient dy", device=self.device)
        x_shape = saved.shape if mode == "eval" else saved["x"].shape
        check_grad_shape(name, dy, x_shape)
        check_grad_dtype(name, dy, self.weight)
        op = dispatch.op("batchnorm", dy, self.weight.data)
        if mode == "train":
            dx, dgamma, dbeta = op.backward_compact(dy, self.weight.data, saved)
        else:
            dx, dgamma, dbeta = op.backward_eval(
                dy, saved, self.weight.data, self.running_mean, self.running_var, self.eps
            )
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Per-feature batch norm for (N, C) (or (N, C, L)): statistics over N (and L)."""

    ndims, layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Per-channel batch norm for (N, C, H, W): statistics over N, H and W."""

    ndims, layout = (4,), "(N, C, H, W)"
