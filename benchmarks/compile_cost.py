"""What a first run spends compiling, kernel by kernel: ``python benchmarks/compile_cost.py``.

Runs a workload in a fresh, empty Numba cache (a temporary ``NUMBA_CACHE_DIR``) and
listens to Numba's compile events (``numba.core.event``, "numba:compile"). A kernel's
compile time here is what the user waits for at its first call: from the start of its
outermost compile event to the end, helpers it calls included (a helper compiled inside a
kernel is counted in that kernel, not again on its own line). Then the same workload runs
again in the now-warm cache, and the difference of the two wall times is printed too.

    python benchmarks/compile_cost.py                  # python -m minidl.demo --quick
    python benchmarks/compile_cost.py --lenet          # one LeNet-5 training step (SGD), batch 64
    python benchmarks/compile_cost.py --top 10         # only the 10 costliest kernels

Issue 12's goal: the demo's first run compiles for at most 12 s on 2 cores. Where a
kernel's seconds go (cProfile of one parallel convolution kernel's compile): about three
quarters in LLVM, optimising and generating machine code for the kernel's final module,
into which every helper it calls (im2col, the BLAS wrapper of ``np.dot``) is linked and
compiled again. Numba's ``parallel=True`` compiled the loop body twice more (the gufunc
and its wrapper), one to three seconds more per kernel (measured: 0.44 s serial against
1.63 s parallel for the max-pooling backward, 0.7 s against 3-5 s for the convolution's
forward), which is why minidl's kernels are serial and run side by side on minidl's own
threads (``minidl/_threads.py``): the demo's compile time went from 18.9 s to 8.2 s
(measured back to back). For minidl's serial kernels of 2026-12-03 (Numba's per-pass
``pipeline_times`` of the wide-row convolution forward): about half in type inference,
helpers compiled on the way included, and ``NUMBA_OPT=0`` took 2.3 s off 3.3: the number
of distinct compilations (each kernel and helper once per combination of argument types,
flags included) is what to cut (benchmarks/README.md). An array assigned into a slice
(``a[t] += b``) also pulls in the formatting of its shape-error message (several seconds
once).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    "demo": "import runpy, sys; sys.argv = ['minidl.demo', '--quick', '--out', OUT]; "
    "runpy.run_module('minidl.demo', run_name='__main__')",
    "lenet": "import numpy as np, minidl; from minidl import nn, optim; from tests.helpers import lenet5; "
    "m = lenet5(); o = optim.SGD(m.parameters(), lr=0.01); f = nn.SoftmaxCrossEntropy(); "
    "x = np.zeros((64, 1, 28, 28), np.float32); y = np.zeros(64, np.int64); "
    "f(m(x), y); m.backward(f.backward()); o.step()",
}


def measure(workload, out):
    """Run ``workload`` (a key of WORKLOADS) in this process: (wall seconds, {kernel:
    seconds of its outermost compile events})."""
    from numba.core import event

    recorder = event.RecordingListener()
    event.register("numba:compile", recorder)
    start = time.perf_counter()
    exec(WORKLOADS[workload], {"OUT": out})
    wall = time.perf_counter() - start
    event.unregister("numba:compile", recorder)
    costs, depth, opened = {}, 0, None
    for stamp, ev in recorder.buffer:  # events nest: keep the outermost ones
        if ev.is_start:
            if depth == 0:
                opened = stamp
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                dispatcher = ev.data["dispatcher"]
                name = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}"
                costs[name] = costs.get(name, 0.0) + stamp - opened
    return wall, costs


def child(workload, out, top):
    """Measure in this process (its NUMBA_CACHE_DIR was set by the parent) and print."""
    wall, costs = measure(workload, out)
    print(f"wall {wall:.2f} s; compiling {sum(costs.values()):.2f} s in {len(costs)} kernels")
    for name, seconds in sorted(costs.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {seconds:6.2f} s  {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lenet", action="store_true", help="one LeNet-5 training step instead of the demo")
    parser.add_argument("--top", type=int, default=30, help="how many kernels to list")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workload = "lenet" if args.lenet else "demo"
    if args.child:
        return child(workload, args.child, args.top)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
        command = [sys.executable, __file__, "--child", out, "--top", str(args.top)] + (
            ["--lenet"] if args.lenet else []
        )
        for label in ("cold cache (a first run)", "warm cache (every later run)"):
            result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
            if result.returncode:
                sys.exit(f"{workload} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            lines = [line for line in result.stdout.splitlines() if line.startswith(("wall", "  "))]
            print(f"{workload}, {label}: " + "\n".join(lines))


if __name__ == "__main__":
    main()
