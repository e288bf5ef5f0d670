"""minidl against PyTorch CPU and a plain NumPy reference: ``python benchmarks/run.py``.

Every case runs the same float32 computation three ways: minidl (its public layers),
PyTorch CPU (optional: a "-" where it is not installed or ``--no-torch``) at the same
thread count as Numba, and the NumPy reference of ``benchmarks/numpy_ref.py`` (im2col
with ``sliding_window_view`` + ``tensordot``, with BLAS allowed the same thread count).
Before timing, the three outputs (and gradients) are checked against each other, so the
three do the same work. Each case is warmed up first (a kernel's first call compiles),
then timed ``--repeats`` times with ``time.perf_counter``, in ``ROUNDS`` blocks per
framework that take turns (numpy, torch, minidl, numpy, ...), so that a slow minute of a
shared machine falls on all three; the table shows the medians of all calls in
milliseconds and the ratios minidl / torch and minidl / numpy (below 1: minidl faster).
The convolutions are also given in GFLOP/s, next to the machine's measured float32
matrix-product rate. At the end: one LeNet-5 epoch on real Fashion-MNIST (if the files
are on disk; ``--no-full`` skips it) and the cold and warm start of ``python -m minidl.demo
--quick``. See benchmarks/README.md for how to read the output.

    python benchmarks/run.py                  # everything: a couple of minutes on a quiet 2-core machine
    python benchmarks/run.py --quick          # a seconds-long smoke run (few repeats)
    python benchmarks/run.py --only conv,lenet --no-torch --repeats 30
"""

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not

import numba  # noqa: E402
import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl._threads  # noqa: E402
import minidl.ops.conv2d  # noqa: E402,F401  (importing it applies the single-threaded BLAS policy)
from minidl import nn, optim  # noqa: E402
from minidl._threads import blas_threads  # noqa: E402
from minidl.profiler import gemm_peak  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_ref  # noqa: E402

try:
    from threadpoolctl import threadpool_info
except ImportError:  # minidl then runs without its BLAS limit too (see minidl/_threads.py)
    threadpool_info = None

FRAMEWORKS = ("minidl", "torch", "numpy")


# --- timing ---------------------------------------------------------------------------------


def timed_ms(fn, repeats, warmup, context=None, warm_s=0.0):
    """Call ``fn`` untimed ``warmup`` times and for at least ``warm_s`` seconds, then
    ``repeats`` times; the times in ms."""
    with context if context is not None else contextlib.nullcontext():
        start = time.perf_counter()
        calls = 0
        while calls < warmup or time.perf_counter() - start < warm_s:
            fn()
            calls += 1
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - start))
    return times


ROUNDS = 3  # blocks of calls per framework, taken in turns (see time_case)
PAUSE_S = 0.2  # between blocks: the last framework's threads stop spinning (OpenBLAS's poll ~0.1 s, minidl's 2 ms)
WARM_S = 0.1  # and then untimed calls for this long: the cores are up to speed again (see time_case)


def time_case(case, repeats, warmup, threads, pause=PAUSE_S, rounds=ROUNDS):
    """{framework: call times in ms} of ``case``: ``repeats`` calls per framework in
    ``rounds`` blocks, the frameworks taking turns block by block. The first block of each
    starts with ``warmup`` untimed calls (compilation, allocator pools), the later ones with
    one (threads that slept during the others' blocks wake up), and each block waits
    ``pause`` seconds first (none in a ``--quick`` smoke run). Turns of single calls were
    measured to slow all three frameworks 1.5-3x (each call ran against the previous
    framework's spinning threads); without the pause, PyTorch's LeNet-5 forward
    convolution, timed right after the NumPy reference (whose OpenBLAS threads poll for
    about 0.1 s after a product), took 10.7 ms instead of 0.55 ms in one run. After the
    pause, each block calls the case untimed for ``WARM_S`` seconds before it times
    anything (not an epoch, which trains): with one warm-up call, the first calls after
    the idle pause ran 3-5x slower on this 2-vCPU VM (batch norm's 0.8 ms
    forward + backward, back to back, was timed at 2.6-4.0 ms in blocks of 5, and PyTorch's
    likewise), so short cases measured the wake-up, not the work."""
    fws = [fw for fw in ("numpy", "torch", "minidl") if case.fns[fw] is not None]
    rounds = min(rounds, repeats)
    # not for the epochs (cases with their own ``repeats``): each call trains, and a faster
    # framework would train more epochs in 0.1 s, so the losses printed after them differ
    warm_s = WARM_S if pause and case.repeats is None else 0.0
    times = {fw: [] for fw in fws}
    for r in range(rounds):
        calls = repeats * (r + 1) // rounds - repeats * r // rounds  # the repeats split as evenly as can be
        for fw in fws:
            time.sleep(pause)
            context = blas_threads(threads) if fw == "numpy" else None
            times[fw] += timed_ms(case.fns[fw], calls, warmup if r == 0 else min(warmup, 1), context, warm_s)
    return times


def spread(times):
    """The interquartile range relative to the median (0 for fewer than 4 times)."""
    if len(times) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


NOISY = 0.25  # a cell whose interquartile range exceeds 25% of its median gets a "~"


def matmul_gflops(threads, n, repeats, torch=None):
    """The float32 rate of an n x n matrix product (2 n^3 flops) with ``threads`` threads,
    from the fastest of ``repeats`` calls (a peak: what the machine can do undisturbed)."""
    if torch is None:
        return gemm_peak(n, repeats, threads)
    rng = np.random.default_rng(0)
    ta = torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
    tb = torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
    ms = min(timed_ms(lambda: torch.mm(ta, tb), repeats, 2))
    return 2 * n**3 / (ms / 1000) / 1e9


# --- checks: the three frameworks compute the same thing ------------------------------------


def assert_close(what, actual, expected, rtol=2e-3, ties=0.0):
    """float32 agreement, relative to the size of ``expected`` (plus 1e-6 absolute, for
    gradients that are zero in exact arithmetic, such as a conv bias followed by batch norm).
    ``ties``: the fraction of elements allowed to differ (see ``block_case``)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = float(np.abs(expected).max())
    atol = rtol * scale + 1e-6
    if ties and np.mean(np.abs(actual - expected) > atol + rtol * np.abs(expected)) <= ties:
        return
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check_all(case, outputs, ties=0.0):
    """``outputs[fw]`` = a list of arrays; every framework's list must match minidl's."""
    for fw, arrays in outputs.items():
        if fw == "minidl" or arrays is None:
            continue
        assert len(arrays) == len(outputs["minidl"]), (
            f"{case}: {fw} gave {len(arrays)} outputs, minidl {len(outputs['minidl'])}"
        )
        for i, (a, b) in enumerate(zip(arrays, outputs["minidl"])):
            assert_close(f"{case}: {fw} output {i} differs from minidl's", a, b, ties=ties)


def as_np(t):
    return t.detach().numpy()


# --- the cases --------------------------------------------------------------------------------


class Case:
    """One row: a name, the callables to time (``None`` where a framework has none) and,
    for a convolution, the flops of one call. ``repeats`` replaces ``--repeats`` (the
    epochs); a whole training step, short and noisy, is timed ``scale`` times as often, in
    ``rounds`` blocks (``STEP_SCALE``, ``STEP_ROUNDS``)."""

    def __init__(self, key, name, fns, flops=None, repeats=None, warmup=None, note=None, scale=1, rounds=ROUNDS):
        self.key, self.name, self.fns, self.flops = key, name, fns, flops
        self.repeats, self.warmup, self.note = repeats, warmup, note
        self.scale, self.rounds = scale, rounds
        self.ms, self.noisy = {}, {}


def conv_case(key, shape, c_out, k, pad, backward, torch, rng):
    N, C, H, W = shape
    x = rng.standard_normal(shape, dtype=np.float32)
    layer = nn.Conv2d(C, c_out, k, padding=pad)
    w, b = layer.weight.data, layer.bias.data
    ref = numpy_ref.Conv2d(w, b, stride=1, padding=pad)
    OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    dy = rng.standard_normal((N, c_out, OH, OW), dtype=np.float32)
    flops = 2 * N * c_out * OH * OW * C * k * k * (3 if backward else 1)  # fwd, + dx and dw
    name = f"conv2d {'fwd+bwd' if backward else 'fwd    '} {N}x{C}x{H}x{W}->{c_out} {k}x{k} pad {pad}"

    if backward:

        def run_minidl():
            layer(x)
            return [layer.backward(dy), layer.weight.grad, layer.bias.grad]

        def run_numpy():
            ref.forward(x)
            return [ref.backward(dy), *ref.grads]
    else:

        def run_minidl():
            return [layer(x)]

        def run_numpy():
            return [ref.forward(x)]

    run_torch = None
    if torch is not None:
        tconv = torch.nn.Conv2d(C, c_out, k, padding=pad)
        with torch.no_grad():
            tconv.weight.copy_(torch.from_numpy(w))
            tconv.bias.copy_(torch.from_numpy(b))
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        if backward:
            tx.requires_grad_(True)

            def run_torch():
                tx.grad = tconv.weight.grad = tconv.bias.grad = None
                tconv(tx).backward(tdy)
                return [tx.grad, tconv.weight.grad, tconv.bias.grad]
        else:

            def run_torch():
                with torch.no_grad():
                    return [tconv(tx)]

    outputs = {
        "minidl": run_minidl(),
        "numpy": run_numpy(),
        "torch": [as_np(t) for t in run_torch()] if run_torch else None,
    }
    if backward:  # the first calls accumulated gradients: compare one call's worth
        outputs["minidl"] = [outputs["minidl"][0], layer.weight.grad.copy(), layer.bias.grad.copy()]
        layer.zero_grad()
    check_all(key, outputs)
    return Case(key, name, {"minidl": run_minidl, "torch": run_torch, "numpy": run_numpy}, flops=flops)


def pool_case(key, kind, shape, torch, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    layer = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(2)
    ref = (numpy_ref.MaxPool2d if kind == "max" else numpy_ref.AvgPool2d)(2)
    N, C, H, W = shape
    dy = rng.standard_normal((N, C, H // 2, W // 2), dtype=np.float32)

    def run_minidl():
        return [layer(x), layer.backward(dy)]

    def run_numpy():
        return [ref.forward(x), ref.backward(dy)]

    run_torch = None
    if torch is not None:
        tpool = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(2)
        tx = torch.from_numpy(x).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def run_torch():
            tx.grad = None
            y = tpool(tx)
            y.backward(tdy)
            return [y, tx.grad]

    check_all(
        key,
        {"minidl": run_minidl(), "numpy": run_numpy(), "torch": [as_np(t) for t in run_torch()] if run_torch else None},
    )
    name = f"{kind}pool2d 2x2 fwd+bwd {N}x{C}x{H}x{W}"
    return Case(key, name, {"minidl": run_minidl, "torch": run_torch, "numpy": run_numpy})


def batchnorm_case(key, shape, torch, rng):
    N, C, H, W = shape
    x = rng.standard_normal(shape, dtype=np.float32) * 2 + 1
    dy = rng.standard_normal(shape, dtype=np.float32)
    layer = nn.BatchNorm2d(C)
    layer.weight.data[:] = rng.uniform(0.5, 1.5, C)
    layer.bias.data[:] = rng.uniform(-0.5, 0.5, C)
    ref = numpy_ref.BatchNorm2d(layer.weight.data.copy(), layer.bias.data.copy())

    def run_minidl():
        y = layer(x)
        return [y, layer.backward(dy)]

    def run_numpy():
        y = ref.forward(x)
        return [y, ref.backward(dy), *ref.grads]

    run_torch = None
    if torch is not None:
        tbn = torch.nn.BatchNorm2d(C)
        with torch.no_grad():
            tbn.weight.copy_(torch.from_numpy(layer.weight.data))
            tbn.bias.copy_(torch.from_numpy(layer.bias.data))
        tx = torch.from_numpy(x).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def run_torch():
            tx.grad = tbn.weight.grad = tbn.bias.grad = None
            y = tbn(tx)
            y.backward(tdy)
            return [y, tx.grad, tbn.weight.grad, tbn.bias.grad]

    md = run_minidl() + [layer.weight.grad.copy(), layer.bias.grad.copy()]
    layer.zero_grad()
    check_all(
        key, {"minidl": md, "numpy": run_numpy(), "torch": [as_np(t) for t in run_torch()] if run_torch else None}
    )
    name = f"batchnorm2d train fwd+bwd {N}x{C}x{H}x{W}"
    return Case(key, name, {"minidl": run_minidl, "torch": run_torch, "numpy": run_numpy})


def block_case(key, name, model, x_shape, torch, rng, flops=None):
    """Forward + backward of a small ``Sequential`` (training mode) with a random upstream
    gradient: y, dx and every parameter gradient are checked in the three frameworks. With
    max pooling after a float32 convolution, two values of a window can differ by rounding
    only, and then the frameworks may route that window's gradient to different pixels: a
    tenth of a percent of the elements may differ there (measured: 0.02 % of the VGG block's dx)."""
    x = rng.standard_normal(x_shape, dtype=np.float32)
    dy = rng.standard_normal(model(x).shape, dtype=np.float32)
    model.zero_grad()
    net = numpy_ref.from_minidl(model)
    tmodel = to_torch(model, torch) if torch is not None else None

    def run_minidl():
        y = model(x)
        return [y, model.backward(dy)]

    def run_numpy():
        y = net.forward(x)
        return [y, net.backward(dy)] + [g for _, g in net.pairs()]

    run_torch = None
    if tmodel is not None:
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def run_torch():
            tx.grad = None
            tmodel.zero_grad(set_to_none=True)
            y = tmodel(tx)
            y.backward(tdy)
            return [y, tx.grad] + [p.grad for p in tmodel.parameters()]

    md = run_minidl() + [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    ties = 1e-3 if any(type(layer).__name__ == "MaxPool2d" for layer in model) else 0.0
    outputs = {"minidl": md, "numpy": run_numpy(), "torch": [as_np(t) for t in run_torch()] if run_torch else None}
    check_all(key, outputs, ties=ties)
    return Case(key, name, {"minidl": run_minidl, "torch": run_torch, "numpy": run_numpy}, flops=flops)


def vgg_block():
    """A VGG-style block with batch norm: (conv 3x3 - BN - ReLU) x 2, then 2x2 max pooling.
    The convolutions have no bias: the batch norm after them would subtract it again."""
    return nn.Sequential(
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def lenet():
    """LeNet-5 for 1x28x28 images, as in tutorial 05."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def digits_cnn():
    """The small CNN with batch norm for the 8x8 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )


def to_torch(model, torch):
    """The same network in PyTorch, with a copy of the minidl model's weights."""
    tnn = torch.nn
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            layers.append(
                tnn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    bias=layer.bias is not None,
                )
            )
        elif kind == "ConvTranspose2d":
            layers.append(
                tnn.ConvTranspose2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.output_padding,
                )
            )
        elif kind == "BatchNorm2d":
            layers.append(tnn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            layers.append(getattr(tnn, kind)(layer.kernel_size, layer.stride, layer.padding))
        elif kind == "Linear":
            layers.append(tnn.Linear(layer.weight.shape[1], layer.weight.shape[0]))
        else:
            layers.append(getattr(tnn, kind)())
    tmodel = tnn.Sequential(*layers)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()}
    missing, unexpected = tmodel.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return tmodel


class Trainers:
    """One training step of the same network in each framework, from the same weights."""

    def __init__(self, model, torch, optimizer, lr, numpy=True, frozen=0):
        """``frozen``: how many leading layers are frozen (``requires_grad`` False) in both."""
        self.model, self.torch = model, torch
        self.loss_fn = nn.SoftmaxCrossEntropy()
        opt_class = optim.SGD if optimizer == "sgd" else optim.Adam
        self.net = numpy_ref.from_minidl(model) if numpy else None
        self.tmodel = to_torch(model, torch) if torch is not None else None
        for i in range(frozen):
            model[i].requires_grad_(False)
            if self.tmodel is not None:
                self.tmodel[i].requires_grad_(False)
        self.optimizer, self.lr = optimizer, lr
        self.opt = opt_class(model.parameters(), lr=lr)
        if torch is not None:
            t_class = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
            self.topt = t_class(self.tmodel.parameters(), lr=lr)

    def minidl_step(self, x, y):
        loss = self.loss_fn(self.model(x), y)
        self.model.backward_params(self.loss_fn.backward())  # as fit: no gradient for the images, as in PyTorch
        self.opt.step()
        self.opt.zero_grad()
        return loss

    def numpy_step(self, x, y):
        return self.net.train_step(x, y, self.optimizer, self.lr)

    def torch_step(self, x, y):
        F = self.torch.nn.functional
        self.topt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.tmodel(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.topt.step()
        return loss.item()

    def check(self, key, x, y):
        """Same weights, same batch: the same loss and gradients in all three."""
        loss = self.loss_fn(self.model(x), y)
        self.model.backward_params(self.loss_fn.backward())
        trained = [p.grad.copy() for p in self.model.parameters() if p.requires_grad]
        outputs = {"minidl": [loss] + trained, "numpy": None, "torch": None}
        self.model.zero_grad()
        if self.net is not None:
            np_loss, dlogits = numpy_ref.softmax_cross_entropy(self.net.forward(x), y)
            self.net.backward(dlogits)
            outputs["numpy"] = [np_loss] + [g for _, g in self.net.pairs()]
        if self.tmodel is not None:
            t_loss = self.torch.nn.functional.cross_entropy(
                self.tmodel(self.torch.from_numpy(x)), self.torch.from_numpy(y)
            )
            t_loss.backward()
            outputs["torch"] = [t_loss.item()] + [as_np(p.grad) for p in self.tmodel.parameters() if p.requires_grad]
            self.topt.zero_grad(set_to_none=True)
        check_all(key, outputs)


# The LeNet-5 step's ratio to PyTorch moved from 0.81x to 0.98x between three runs of 15
# calls in 3 blocks (2 cores, 2026-12-02: this VM's speed drifts within minutes); 300
# calls in 10 blocks of 30, the frameworks taking turns, is the method of the A/B
# comparisons in CONTRIBUTING.md.
STEP_SCALE, STEP_ROUNDS = 20, 10


def lenet_step_case(key, torch, rng):
    x = rng.uniform(0, 1, (64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    tr = Trainers(lenet(), torch, "sgd", 0.01)
    tr.check(key, x, y)
    fns = {
        "minidl": lambda: tr.minidl_step(x, y),
        "numpy": lambda: tr.numpy_step(x, y),
        "torch": (lambda: tr.torch_step(x, y)) if torch is not None else None,
    }
    return Case(key, "LeNet-5 train step, batch 64, 1x28x28, SGD", fns, scale=STEP_SCALE, rounds=STEP_ROUNDS)


def probe_step_case(key, torch, rng):
    """The LeNet-5 step with its convolutional part frozen (a linear probe, as in tutorial
    13): neither framework should run the frozen part's backward."""
    x = rng.uniform(0, 1, (64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    tr = Trainers(lenet(), torch, "sgd", 0.01, numpy=False, frozen=7)  # conv, ReLU, pool x 2, Flatten
    tr.check(key, x, y)
    fns = {
        "minidl": lambda: tr.minidl_step(x, y),
        "numpy": None,
        "torch": (lambda: tr.torch_step(x, y)) if torch is not None else None,
    }
    return Case(key, "LeNet-5 step, convolutions frozen (probe), SGD", fns, scale=STEP_SCALE, rounds=STEP_ROUNDS)


def epoch_fns(tr, x, y, batch_size, seed, frameworks, losses, max_batches=None):
    """Callables that train one epoch (a fresh shuffled order each call, the same sequence of
    orders for every framework) and record the epoch's mean loss in ``losses[fw]``."""

    def make(fw, step):
        rng = np.random.default_rng(seed)

        def epoch():
            order = rng.permutation(len(x))
            starts = range(0, len(x), batch_size)[:max_batches]
            total = 0.0
            for start in starts:
                idx = order[start : start + batch_size]
                total += step(x[idx], y[idx])
            losses.setdefault(fw, []).append(total / len(starts))

        return epoch

    steps = {"minidl": tr.minidl_step, "numpy": tr.numpy_step, "torch": tr.torch_step}
    return {fw: make(fw, steps[fw]) if fw in frameworks else None for fw in FRAMEWORKS}


def digits_epoch_case(key, torch, epochs, warmup, losses, max_batches=None):
    from minidl.data import load_digits, train_val_test_split

    x, y = load_digits()
    (x, y), _, _ = train_val_test_split(x, y, val=0.15, test=0.15, seed=0)  # the demo's training split
    minidl.seed(0)
    tr = Trainers(digits_cnn(), torch, "adam", 1e-3)
    tr.check(key, x[:32], y[:32])
    frameworks = ["minidl", "numpy"] + (["torch"] if torch is not None else [])
    fns = epoch_fns(tr, x, y, 32, 0, frameworks, losses.setdefault(key, {}), max_batches)
    what = "epoch" if max_batches is None else f"first {max_batches} batches of an epoch"
    name = f"digits CNN {what}, {len(x)} 1x8x8 images, batch 32, Adam"
    return Case(
        key,
        name,
        fns,
        repeats=epochs,
        warmup=warmup,
        note=f"conv16-bn-relu-pool-conv32-bn-relu-pool-linear; {epochs} timed epoch(s) after {warmup} warm-up epoch(s)",
    )


def fashion_epoch_case(key, torch, losses, max_batches=None):
    """One LeNet-5 epoch on Fashion-MNIST with Adam: minidl through ``fit`` (its DataLoader,
    its progress bar when stderr is a terminal, its epoch summary), PyTorch through its own
    loop over the same batches (``fit``'s seeded order is ``default_rng(0).permutation``)."""
    from minidl.data import load_mnist
    from minidl.train import fit

    try:
        x, y = load_mnist("fashion", "train", download=False)
    except (FileNotFoundError, OSError, ValueError) as err:
        return f"skipped: Fashion-MNIST not found ({str(err).splitlines()[0][:100]})"
    if max_batches is not None:
        x, y = x[: 64 * max_batches], y[: 64 * max_batches]
    minidl.seed(0)
    tr = Trainers(lenet(), torch, "adam", 1e-3, numpy=False)
    tr.check(key, x[:64], y[:64])
    record = losses.setdefault(key, {})

    def minidl_epoch():
        with contextlib.redirect_stdout(io.StringIO()):  # fit's epoch line, not the table's
            history = fit(tr.model, tr.loss_fn, tr.opt, (x, y), epochs=1, batch_size=64, seed=0)
        record.setdefault("minidl", []).append(history.train_loss[-1])

    fns = epoch_fns(tr, x, y, 64, 0, ["torch"] if torch is not None else [], record)
    fns["minidl"] = minidl_epoch
    # no warm-up epoch (it would double the time): the check above has just run one
    # forward and backward in each framework, and the kernels are compiled (or cached)
    name = f"LeNet-5 epoch, Fashion-MNIST {len(x)} images, batch 64, Adam"
    return Case(
        key,
        name,
        fns,
        repeats=1,
        warmup=0,
        note="one timed epoch each, no warm-up epoch (one checked forward/backward before it); "
        "minidl through fit(), PyTorch through its own loop over the same batches",
    )


# --- the demo's start-up ----------------------------------------------------------------------


FIRST_STEP = """
import os, runpy, sys, time
from minidl import optim
step = optim.Adam.step
def first_step(self, *args, **kwargs):
    out = step(self, *args, **kwargs)
    if not getattr(first_step, "seen", False):
        first_step.seen = True
        print(f"[first training step done {time.time() - float(os.environ['MINIDL_BENCH_T0']):.2f} s]")
    return out
optim.Adam.step = first_step
sys.argv = ["minidl.demo", *sys.argv[1:]]
runpy.run_module("minidl.demo", run_name="__main__")
"""


def time_demo():
    """Wall time of ``python -m minidl.demo --quick`` twice, in a fresh Numba cache folder:
    the first run compiles every kernel it calls, the second loads them from that cache.
    Returns ([(wall s, training s as the demo prints it or None, s from the process's start
    to the end of the first training step)] * 2, number of kernels the first run
    compiled), or a message if the demo failed. The first step is seen by wrapping
    ``Adam.step`` (the demo's optimizer) in the child process (``FIRST_STEP``)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="minidl-bench-") as tmp:
        env = dict(
            os.environ,
            MPLBACKEND="Agg",
            NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"),
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        )
        for _ in range(2):
            env["MINIDL_BENCH_T0"] = repr(time.time())
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", FIRST_STEP, "--quick", "--out", tmp],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or [""])[-1]
                return f"the demo failed (exit {proc.returncode}): {last}"
            m = re.search(r"epochs? in ([0-9.]+) s", proc.stdout)
            first = re.search(r"first training step done ([0-9.]+) s", proc.stdout)
            results.append((wall, float(m.group(1)) if m else None, float(first.group(1)) if first else None))
            if len(results) == 1:  # what the cold run compiled: one index file per kernel
                compiled = len(list(Path(env["NUMBA_CACHE_DIR"]).rglob("*.nbi")))
    return results, compiled


# --- output -----------------------------------------------------------------------------------


def fmt_ms(ms, noisy=False):
    if ms is None:
        return "-"
    text = f"{ms:.0f}" if ms >= 1000 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"
    return ("~" if noisy else "") + text


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def fmt_ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def print_header(threads, torch, torch_reason, repeats, warmup, step_scale):
    print(
        f"minidl benchmarks: float32; each cell is the median wall time (time.perf_counter) of {repeats} "
        f"calls after {warmup} untimed warm-up calls, in ms, timed in {ROUNDS} blocks per framework taken in turns "
        f"(the LeNet-5 steps: {step_scale * repeats} calls in {min(STEP_ROUNDS, step_scale * repeats)} blocks)"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
        f"(1 min); Python {sys.version.split()[0]}, NumPy {np.__version__}, Numba {numba.__version__}"
    )
    print(f"threads: {threads} (numba.get_num_threads(); set NUMBA_NUM_THREADS to change)")
    policy = minidl._threads.__doc__.strip().splitlines()[0]
    print(f"threading policy (minidl/_threads.py): {policy}")
    print("  minidl: the batch/channels in T chunks on its own threads (run_chunks), every BLAS call on 1 thread")
    if threadpool_info is not None:
        blas = sorted({f"{i['prefix']}={i['num_threads']}" for i in threadpool_info() if i["user_api"] == "blas"})
        print(f"  BLAS threads now: {', '.join(blas)}")
    else:
        print("  threadpoolctl missing: BLAS thread counts are not controlled")
    if torch is not None:
        print(f"  PyTorch {torch.__version__}: torch.set_num_threads({threads}) -> {torch.get_num_threads()} threads")
    else:
        print(f"  PyTorch: {torch_reason} (its columns show '-')")
    print(f"  NumPy reference (benchmarks/numpy_ref.py): BLAS allowed {plural(threads, 'thread')} while it runs")
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  note: load average {load:.2f} before starting: other processes share the cores, timings are noisy")


def print_table(cases):
    width = max(len(c.name) for c in cases) + 2
    print(f"\n{'case':<{width}}{'minidl':>10}{'torch':>10}{'numpy':>10}{'minidl/torch':>14}{'minidl/numpy':>14}")
    for c in cases:
        m, t, n = (c.ms.get(fw) for fw in FRAMEWORKS)
        cells = "".join(f"{fmt_ms(c.ms.get(fw), c.noisy.get(fw)):>10}" for fw in FRAMEWORKS)
        print(f"{c.name:<{width}}{cells}{fmt_ratio(m, t):>14}{fmt_ratio(m, n):>14}")
    if any(any(c.noisy.values()) for c in cases):
        print(
            f"~ = noisy: the interquartile range of that cell's calls is over {NOISY:.0%} of its median "
            "(other processes on the cores?)"
        )


def print_gflops(cases, peak_np, peak_np1, threads):
    convs = [c for c in cases if c.flops]
    if not convs:
        return
    width = max(len(c.name) for c in convs) + 2
    print("\nconvolutions in GFLOP/s (2*N*C_out*OH*OW*C*KH*KW per product; fwd+bwd = 3 products)")
    print(
        f"reference peak: np.matmul 1024x1024 float32 at {plural(threads, 'thread')} = {peak_np:.0f} GFLOP/s"
        + (
            f" (at 1 thread {peak_np1:.0f}; minidl runs {threads} single-threaded products side by side)"
            if threads > 1
            else ""
        )
    )
    print(f"{'case':<{width}}{'GFLOP':>8}{'minidl':>9}{'torch':>9}{'numpy':>9}{'minidl % peak':>15}")
    for c in convs:
        rates = {fw: (c.flops / (c.ms[fw] / 1000) / 1e9 if c.ms.get(fw) else None) for fw in FRAMEWORKS}
        cells = "".join(f"{('-' if r is None else f'{r:.0f}' if r >= 10 else f'{r:.1f}'):>9}" for r in rates.values())
        pct = "-" if rates["minidl"] is None else f"{100 * rates['minidl'] / peak_np:.0f}%"
        print(f"{c.name:<{width}}{c.flops / 1e9:>8.3f}{cells}{pct:>15}")


# --- main -------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per micro-benchmark (default 15; 2 with --quick)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="timed digits epochs (default 3; 1 with --quick)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in seconds: 2 repeats, 5 batches of a digits epoch, 5 batches "
        "of Fashion-MNIST, no demo start-up timing",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    parser.add_argument("--no-full", action="store_true", help="skip the Fashion-MNIST epoch (~25 s)")
    parser.add_argument("--no-demo", action="store_true", help="skip timing the demo's cold and warm start (~20 s)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated substrings of case keys to run: conv, conv1, conv2, conv_lenet, cifar1, cifar2, "
        "vgg_block, conv_transpose, linear, pool, maxpool, avgpool, batchnorm, lenet_step, probe_step, digits, fashion, "
        "demo",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 15)
    epochs = args.epochs or (1 if args.quick else 3)
    warmup = 1 if args.quick else 3
    wanted = None if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]

    def selected(key):
        return wanted is None or any(s in key for s in wanted)

    t_start = time.perf_counter()
    threads = numba.get_num_threads()
    torch, torch_reason = None, "left out (--no-torch)"
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            torch, torch_reason = None, "not installed"

    print_header(threads, torch, torch_reason, repeats, warmup, 1 if args.quick else STEP_SCALE)

    peak_np = matmul_gflops(threads, 1024, 5 if args.quick else 10)
    peak_np1 = matmul_gflops(1, 1024, 3 if args.quick else 5) if threads > 1 else peak_np
    peak_torch = matmul_gflops(threads, 1024, 5 if args.quick else 10, torch) if torch is not None else None
    print(
        f"float32 matrix product 1024x1024 (best of several): NumPy {peak_np:.0f} GFLOP/s at {plural(threads, 'thread')}"
        + (f", {peak_np1:.0f} at 1 thread" if threads > 1 else "")
        + (f"; torch.mm {peak_torch:.0f} at {plural(threads, 'thread')}" if peak_torch else "")
    )
    sys.stdout.flush()

    rng = np.random.default_rng(0)
    minidl.seed(0)
    losses = {}
    builders = [
        ("conv1_fwd", lambda: conv_case("conv1_fwd", (64, 3, 32, 32), 32, 3, 1, False, torch, rng)),
        ("conv1_fwdbwd", lambda: conv_case("conv1_fwdbwd", (64, 3, 32, 32), 32, 3, 1, True, torch, rng)),
        ("conv2_fwd", lambda: conv_case("conv2_fwd", (64, 32, 16, 16), 64, 3, 1, False, torch, rng)),
        ("conv2_fwdbwd", lambda: conv_case("conv2_fwdbwd", (64, 32, 16, 16), 64, 3, 1, True, torch, rng)),
        ("conv_lenet_fwd", lambda: conv_case("conv_lenet_fwd", (64, 1, 28, 28), 6, 5, 2, False, torch, rng)),
        ("conv_lenet_fwdbwd", lambda: conv_case("conv_lenet_fwdbwd", (64, 1, 28, 28), 6, 5, 2, True, torch, rng)),
        ("cifar1_fwd", lambda: conv_case("cifar1_fwd", (32, 3, 32, 32), 32, 3, 1, False, torch, rng)),
        ("cifar1_fwdbwd", lambda: conv_case("cifar1_fwdbwd", (32, 3, 32, 32), 32, 3, 1, True, torch, rng)),
        ("cifar2_fwd", lambda: conv_case("cifar2_fwd", (32, 32, 32, 32), 64, 3, 1, False, torch, rng)),
        ("cifar2_fwdbwd", lambda: conv_case("cifar2_fwdbwd", (32, 32, 32, 32), 64, 3, 1, True, torch, rng)),
        (
            "vgg_block",
            lambda: block_case(
                "vgg_block",
                "VGG block fwd+bwd 32x32x32x32 (conv-BN-ReLU)x2-maxpool",
                vgg_block(),
                (32, 32, 32, 32),
                torch,
                rng,
            ),
        ),
        (
            "conv_transpose",
            lambda: block_case(
                "conv_transpose",
                "conv_transpose2d fwd+bwd 32x64x16x16->32 2x2 stride 2",
                nn.Sequential(nn.ConvTranspose2d(64, 32, 2, stride=2)),
                (32, 64, 16, 16),
                torch,
                rng,
                flops=3 * 2 * 32 * 64 * 16 * 16 * 32 * 2 * 2,
            ),
        ),
        (
            "linear",
            lambda: block_case(
                "linear", "linear fwd+bwd 256x1024->512", nn.Sequential(nn.Linear(1024, 512)), (256, 1024), torch, rng
            ),
        ),
        ("maxpool", lambda: pool_case("maxpool", "max", (64, 32, 32, 32), torch, rng)),
        ("avgpool", lambda: pool_case("avgpool", "avg", (64, 32, 32, 32), torch, rng)),
        ("batchnorm", lambda: batchnorm_case("batchnorm", (64, 32, 16, 16), torch, rng)),
        ("lenet_step", lambda: lenet_step_case("lenet_step", torch, rng)),
        ("probe_step", lambda: probe_step_case("probe_step", torch, rng)),
        (
            "digits_epoch",
            lambda: digits_epoch_case(
                "digits_epoch", torch, epochs, 0 if args.quick else 1, losses, max_batches=5 if args.quick else None
            ),
        ),
    ]
    if not args.no_full:
        builders.append(
            (
                "fashion_epoch",
                lambda: fashion_epoch_case("fashion_epoch", torch, losses, max_batches=5 if args.quick else None),
            )
        )

    cases, notes = [], []
    for key, build in builders:
        if not selected(key):
            continue
        case = build()  # runs each framework once and checks that they agree
        if isinstance(case, str):
            notes.append(f"{key}: {case}")
            continue
        case_warmup = warmup if case.warmup is None else case.warmup
        n = case.repeats or repeats * (1 if args.quick else case.scale)  # (no scale in a smoke run)
        timings = time_case(case, n, case_warmup, threads, 0.0 if args.quick else PAUSE_S, case.rounds)
        for fw, times in timings.items():
            case.ms[fw] = statistics.median(times)
            case.noisy[fw] = spread(times) > NOISY
        cases.append(case)
        if case.note:
            notes.append(f"{key}: {case.note}")
        print(f"  [{time.perf_counter() - t_start:5.1f} s] done: {case.name}", file=sys.stderr, flush=True)

    if cases:
        print(
            "\nall outputs and gradients checked before timing: minidl = NumPy reference"
            + (" = PyTorch" if torch is not None else "")
            + " (float32, rtol 2e-3)"
        )
        print_table(cases)
        print_gflops(cases, peak_np, peak_np1, threads)
    for key, per_fw in losses.items():
        if per_fw:
            last = ", ".join(f"{fw} {per_fw[fw][-1]:.4f}" for fw in FRAMEWORKS if fw in per_fw)
            notes.append(f"{key}: mean training loss of the last timed epoch (same weights and batch order): {last}")
    if notes:
        print("\nnotes:")
        for line in notes:
            print(f"  {line}")

    if selected("demo") and not args.quick and not args.no_demo:
        print("\ndemo start-up: `python -m minidl.demo --quick` (one short epoch), wall time of the whole process")
        sys.stdout.flush()
        demo = time_demo()
        if isinstance(demo, str):
            print(f"  {demo}")
        else:
            demo, compiled = demo
            for label, (wall, train_s, first_s) in zip(("cold", "warm"), demo):
                extra = f" (of which training {train_s:.1f} s, as the demo reports)" if train_s is not None else ""
                first = f"; first training step done after {first_s:.2f} s" if first_s is not None else ""
                print(f"  {label}: {wall:.1f} s{extra}{first}")
            print(
                f"  cold = an empty Numba cache (NUMBA_CACHE_DIR = a new temp folder): the {compiled} kernels the "
                "demo calls are compiled;\n  warm = the same folder again: the kernels load from the cache. "
                f"Difference ~ compilation: {demo[0][0] - demo[1][0]:.1f} s.\n"
                "  Both include starting Python and importing NumPy, Numba and matplotlib; "
                "the OS file cache is not cleared."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
