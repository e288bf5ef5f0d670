"""``minidl.profile(model, x, loss_fn=None, target=None, steps=5)``: where the time of a
step goes, layer by layer.

    prof = minidl.profile(model, x, loss_fn, y)   # a warm-up step (it compiles), then 5 timed steps
    print(prof)                                    # one row per layer, like summary()
    prof.plot()                                    # the step's parts as bars
    prof.rows, prof.step_ms                        # the numbers (means over the timed steps)

A training step is ``model(x)``, the loss, ``loss_fn.backward()`` and
``model.backward_params``, as ``fit`` runs it (no gradient for the input batch; no
optimizer: time ``optimizer.step()`` on its own); without a loss the step is the
forward pass in evaluation mode. Each leaf layer's forward and backward are timed around
the call, and so are the loss's; ``other`` is the rest of the step: the containers' loops
and checks. All are means over the timed steps, so the parts and ``other`` add up to the
step, and ``other`` is never negative (the parts are timed inside the step). The
model is left as it was: parameters, gradients, running statistics and mode.

FLOPs. A layer's forward FLOPs, from the shapes (2 per multiply-add, as PyTorch's
``torch.utils.flop_counter`` counts them):

    Linear            2 N in out
    Conv2d            2 N Cout OH OW Cin KH KW
    ConvTranspose2d   2 N Cin H W Cout KH KW
    pooling           N C OH OW KH KW          (one comparison or addition per window element)
    others            ops-per-element x output elements (ELEMENT_OPS: ReLU 1, batch norm 8, ...)

A backward costs twice the forward for the three products (dx and dw are each a product
of the same size), once the forward where only dw is computed (the first layer that
trains, under ``backward_params``; the frozen layers below it run no backward and count
none), and the same as the forward for the others. The bytes are the least
a kernel must move: the forward reads x and the parameters and writes y; the backward
reads dy, x and the parameters and writes dx (unless skipped) and the parameter
gradients. FLOPs / bytes is the layer's arithmetic intensity, its x coordinate on a
roofline plot (tutorial 17).
"""

import math
import statistics
import time

import numpy as np

from .device import to_device, to_host

ELEMENT_OPS = {  # forward operations per output element of the element-wise layers (an estimate)
    "ReLU": 1,
    "LeakyReLU": 2,
    "Sigmoid": 4,
    "Tanh": 4,
    "Dropout": 1,
    "BatchNorm1d": 8,
    "BatchNorm2d": 8,
    "Upsample": 0,
    "Flatten": 0,
    "Unflatten": 0,
}
PRODUCTS = ("Linear", "Conv2d", "ConvTranspose2d")


def forward_flops(layer, x_shape, y_shape):
    """The forward FLOPs of ``layer`` for an input of x_shape giving y_shape (the table in
    the module docstring)."""
    kind = type(layer).__name__
    if kind == "Linear":
        return 2 * math.prod(x_shape) * layer.out_features
    if kind == "Conv2d":
        KH, KW = layer.kernel_size
        return 2 * math.prod(y_shape) * x_shape[1] * KH * KW
    if kind == "ConvTranspose2d":
        KH, KW = layer.kernel_size
        return 2 * math.prod(x_shape) * y_shape[1] * KH * KW
    if kind in ("MaxPool2d", "AvgPool2d"):
        return math.prod(y_shape) * math.prod(layer.kernel_size)
    return ELEMENT_OPS.get(kind, 1) * math.prod(y_shape)


def _leaves(layer, prefix=""):
    """(name, layer) for every layer without children, in the order of the tree; a layer
    held at several places (shared weights) once, at its first name."""
    children = layer.named_children()
    if not children:
        return [(prefix or "-", layer)]
    found, seen = [], set()
    for name, child in children:
        for leaf_name, leaf in _leaves(child, f"{prefix}.{name}" if prefix else name):
            if id(leaf) not in seen:
                seen.add(id(leaf))
                found.append((leaf_name, leaf))
    return found


class _Timer:
    """Times one method of one layer object while installed (an instance attribute that
    shadows the class's method; ``remove`` deletes it)."""

    def __init__(self, layer, method, sync):
        self.layer, self.method, self.sync = layer, method, sync
        self.calls, self.shapes = [], []
        original = getattr(layer, method)

        def timed(*args):
            start = time.perf_counter()
            result = original(*args)
            sync()
            self.calls.append(time.perf_counter() - start)
            if method == "forward" and not self.shapes:
                self.shapes = [tuple(args[0].shape), tuple(np.shape(result))]
            return result

        object.__setattr__(layer, method, timed)

    def remove(self):
        del self.layer.__dict__[self.method]


class Profile:
    """The result of ``minidl.profile``: ``rows`` (a dict per leaf layer, the loss, and
    "other": name, kind, forward_ms, backward_ms, flops, bytes, gflops, share), ``step_ms``
    (the mean step), ``steps``. ``str(profile)`` is the table."""

    def __init__(self, rows, step_ms, steps):
        self.rows, self.step_ms, self.steps = rows, step_ms, steps

    def __str__(self):
        header = ("Layer", "Type", "fwd ms", "bwd ms", "MFLOP", "GFLOP/s", "share")
        table = [header] + [
            (
                r["name"],
                r["kind"],
                f"{r['forward_ms']:.3f}",
                f"{r['backward_ms']:.3f}",
                f"{r['flops'] / 1e6:.2f}",
                f"{r['gflops']:.1f}",
                f"{100 * r['share']:.1f} %",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in table
        ]
        rule = "-" * len(lines[0])
        flops = sum(r["flops"] for r in self.rows)
        return "\n".join(
            [rule, lines[0], rule, *lines[1:], rule]
            + [
                f"step: {self.step_ms:.3f} ms (mean of {self.steps}), {flops / 1e6:.1f} MFLOP, {flops / self.step_ms / 1e6:.1f} GFLOP/s"
            ]
        )

    __repr__ = __str__

    def plot(self, ax=None):
        """Horizontal bars: each part's forward and backward milliseconds. Returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.3 * len(self.rows) + 1.2))
        names = [f"{r['name']} {r['kind']}" for r in self.rows][::-1]
        forward = [r["forward_ms"] for r in self.rows][::-1]
        backward = [r["backward_ms"] for r in self.rows][::-1]
        ax.barh(names, forward, label="forward")
        ax.barh(names, backward, left=forward, label="backward")
        ax.set(xlabel="ms per step (mean)", title=f"step {self.step_ms:.2f} ms")
        ax.legend()
        return ax

    def roofline(self, peak_gflops, bandwidth_gbs, ax=None, roof=True):
        """Each layer with FLOPs as a point (arithmetic intensity FLOP/byte, achieved
        GFLOP/s) under the roof min(peak, bandwidth x intensity), log-log. A layer left of
        the ridge (intensity < peak / bandwidth) is memory-bound: no kernel can make it
        reach the peak. ``roof=False`` adds the points to an ``ax`` that has its roof
        already (a second profile). Returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 5))
        points = [r for r in self.rows if r["flops"] > 0 and r["bytes"] > 0]
        intensity = np.array([r["flops"] / r["bytes"] for r in points])
        low, high = min(0.05, intensity.min(initial=1) / 2), max(1000.0, intensity.max(initial=1) * 2)
        if roof:
            x = np.geomspace(low, high, 200)
            ax.loglog(
                x, np.minimum(peak_gflops, bandwidth_gbs * x), "k-", label="roof: min(peak, bandwidth x intensity)"
            )
            ax.axvline(peak_gflops / bandwidth_gbs, color="gray", linestyle=":", label="ridge point")
        for r, i in zip(points, intensity):
            ax.loglog(i, max(r["gflops"], 1e-3), "o")
            ax.annotate(f"{r['name']} {r['kind']}", (i, max(r["gflops"], 1e-3)), fontsize=7)
        ax.set(xlabel="arithmetic intensity (FLOP per byte)", ylabel="GFLOP/s", title="roofline")
        ax.legend(fontsize=8)
        return ax


def gemm_peak(n=1024, repeats=10, threads=None):
    """The machine's float32 matrix-product rate in GFLOP/s: the fastest of ``repeats``
    n x n products (2 n^3 FLOPs) by NumPy's BLAS with ``threads`` threads (minidl's thread
    count when None; minidl's policy keeps BLAS at one thread otherwise). The "peak" of a
    roofline: what a well-blocked kernel can reach."""
    from ._threads import blas_threads
    from .nn.checks import positive_int

    n, repeats = positive_int("gemm_peak", "n", n), positive_int("gemm_peak", "repeats", repeats)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    with blas_threads(threads):
        np.matmul(a, b, out=out)  # warm up
        best = min(_seconds(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def memory_bandwidth(megabytes=256, repeats=5):
    """The machine's memory bandwidth in GB/s: the fastest of ``repeats`` copies of a
    ``megabytes`` array into another (each copy reads and writes every byte once). The
    slope of a roofline: what a kernel that does little arithmetic per byte can reach."""
    from .nn.checks import positive_int

    size = positive_int("memory_bandwidth", "megabytes", megabytes) * 2**20
    repeats = positive_int("memory_bandwidth", "repeats", repeats)
    a, b = np.ones(size // 4, dtype=np.float32), np.empty(size // 4, dtype=np.float32)
    np.copyto(b, a)
    return 2 * size / min(_seconds(lambda: np.copyto(b, a)) for _ in range(repeats)) / 1e9


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sync_for(model):
    if model.device == "cuda":
        from .cuda._launch import sync

        return sync
    return lambda: None


def profile(model, x, loss_fn=None, target=None, steps=5):
    """Profile ``steps`` steps of ``model`` on the batch ``x`` (after one untimed warm-up
    step); with ``loss_fn`` and ``target`` training steps, without them inference in eval
    mode. Returns a ``Profile``; the model's state, gradients and mode are restored."""
    from .nn.checks import positive_int

    steps = positive_int("profile", "steps", steps)
    if (loss_fn is None) != (target is None):
        raise ValueError("profile: give loss_fn and target together (a training step), or neither (inference)")
    sync, training = _sync_for(model), loss_fn is not None
    was_training, state = model.training, {k: np.copy(to_host(v)) for k, v in model.state_dict().items()}
    grads = [np.copy(to_host(p.grad)) for p in model.parameters()]
    parts = _leaves(model) + ([("loss", loss_fn)] if training else [])
    timers = {}
    step_times = []
    try:
        model.train(training)
        for _, layer in parts:
            for method in _timed_methods(layer, training):
                timers[(id(layer), method)] = _Timer(layer, method, sync)
        for step in range(steps + 1):
            if step == 1:  # the warm-up step compiled the kernels: forget its times
                for timer in timers.values():
                    timer.calls.clear()
            start = time.perf_counter()
            y = model(x)
            if training:
                loss_fn(y, target)
                model.backward_params(loss_fn.backward())
                model.zero_grad()
            sync()
            step_times.append(time.perf_counter() - start)
    finally:
        for timer in timers.values():
            timer.remove()
        model.load_state_dict(state)
        for p, g in zip(model.parameters(), grads):
            p.grad = to_device(g, p.device)
        model.train(was_training)
    return _profile_of(parts, timers, statistics.mean(step_times[1:]), steps, training)


def _timed_methods(layer, training):
    """What to time on ``layer``: forward, and in training backward, and backward_params
    where the layer has its own (one that skips dx: the first layer of a step like fit's;
    the inherited one calls backward, which is timed already)."""
    from .nn.module import Layer

    if not training:
        return ("forward",)
    own_params_only = type(layer).backward_params is not Layer.backward_params
    return ("forward", "backward") + (("backward_params",) if own_params_only else ())


def _profile_of(parts, timers, step, steps, training):
    """The Profile of the timers' records (seconds) and the mean step."""
    rows = []
    for name, layer in parts:
        forward = timers[(id(layer), "forward")]
        backward = timers.get((id(layer), "backward"))
        params_only = timers.get((id(layer), "backward_params"))
        backward_calls = (backward.calls if backward else []) + (params_only.calls if params_only else [])
        per_step = len(forward.calls) // steps or 1  # a layer may be called at several places
        f_ms = 1e3 * sum(forward.calls) / steps
        b_ms = 1e3 * sum(backward_calls) / steps
        if name == "loss":
            flops = nbytes = 0
        else:
            x_shape, y_shape = forward.shapes
            with_dx = len(backward.calls) // steps if backward else 0  # backward calls per step
            without_dx = len(params_only.calls) // steps if params_only else 0  # backward_params calls
            f = forward_flops(layer, x_shape, y_shape)
            flops = f * (per_step + (2 if type(layer).__name__ in PRODUCTS else 1) * with_dx + without_dx)
            itemsize = np.dtype(next((p.dtype for p in layer.parameters()), np.float32)).itemsize
            params = sum(p.size for p in layer.parameters())
            moved = math.prod(x_shape) + math.prod(y_shape) + params  # x, y (or dy) and the parameters
            backward_moved = with_dx * (moved + math.prod(x_shape) + params) + without_dx * (moved + params)
            nbytes = itemsize * (per_step * moved + backward_moved)
        kind = type(layer).__name__
        rows.append(
            {"name": name, "kind": kind, "forward_ms": f_ms, "backward_ms": b_ms, "flops": flops, "bytes": nbytes}
        )
    other = 1e3 * step - sum(r["forward_ms"] + r["backward_ms"] for r in rows)
    rows.append(
        {"name": "other", "kind": "containers, checks", "forward_ms": other, "backward_ms": 0.0, "flops": 0, "bytes": 0}
    )
    for r in rows:
        ms = r["forward_ms"] + r["backward_ms"]
        r["gflops"] = r["flops"] / ms / 1e6 if ms > 0 else 0.0
        r["share"] = ms / (1e3 * step)
    return Profile(rows, 1e3 * step, steps)
