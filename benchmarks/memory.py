"""Peak memory of one LeNet-5 epoch on Fashion-MNIST: ``python benchmarks/memory.py``.

Each framework trains in a fresh process of its own, measured the same way: load the
training set, build LeNet-5 from the same weights (PyTorch's is a copy of minidl's, as in
``run.py``), take two warm-up steps (Numba's kernels load or compile, PyTorch's allocator
fills its pools), then reset the kernel's peak-RSS counter (``/proc/self/clear_refs``, Linux)
and train one epoch with Adam, batch 64: minidl through ``fit``, PyTorch through its own
loop over the same batches. Printed per framework: the resident memory before the epoch,
its peak during the epoch, and the difference (what the training itself added on top of
the data, the model and the imported libraries).

    python benchmarks/memory.py                 # the 60000 training images
    python benchmarks/memory.py --images 6400   # a shorter epoch (same peak: it is per batch)

Issue 12's goal: minidl's peak no higher than PyTorch's. Linux only (it reads /proc).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = """
import json, sys
ROOT, HERE, FRAMEWORK, IMAGES, THREADS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path[:0] = [ROOT, HERE]
import numpy as np
import minidl
from minidl import optim
from minidl.data import load_mnist
import run

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB

x, y = load_mnist("fashion", "train", download=False)
x, y = x[:IMAGES], y[:IMAGES]
minidl.seed(0)
model = run.lenet()
if FRAMEWORK == "minidl":
    from minidl import nn
    from minidl.train import fit
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    for start in (0, 64):  # warm-up steps
        loss_fn(model(x[start : start + 64]), y[start : start + 64])
        model.backward_params(loss_fn.backward())  # as fit does
        opt.step()
        opt.zero_grad()
    def epoch():
        fit(model, loss_fn, opt, (x, y), epochs=1, batch_size=64, seed=0, verbose=False)
else:
    import torch
    torch.set_num_threads(THREADS)
    tmodel = run.to_torch(model, torch)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    F = torch.nn.functional
    def step(idx):
        topt.zero_grad(set_to_none=True)
        F.cross_entropy(tmodel(torch.from_numpy(x[idx])), torch.from_numpy(y[idx])).backward()
        topt.step()
    for start in (0, 64):
        step(np.arange(start, start + 64))
    def epoch():
        order = np.random.default_rng(0).permutation(len(x))  # fit's order for seed 0
        for start in range(0, len(x), 64):
            step(order[start : start + 64])

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident set size (VmHWM) to the current one
before = status("VmRSS")
epoch()
print(json.dumps({"before": before, "peak": status("VmHWM")}))
"""


def measure(framework, images, threads):
    """{"before": MiB, "peak": MiB} of one epoch of ``framework`` in a fresh process."""
    args = [str(ROOT), str(HERE), framework, str(images), str(threads)]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{framework}: the epoch failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000, help="training images in the epoch (default 60000)")
    parser.add_argument("--no-torch", action="store_true", help="measure minidl only")
    args = parser.parse_args(argv)
    if not Path("/proc/self/clear_refs").exists():
        print("needs Linux's /proc/self/clear_refs to reset the peak-memory counter; nothing measured")
        return 0
    import numba

    threads = numba.get_num_threads()
    frameworks = ["minidl"]
    if not args.no_torch:
        try:
            import torch  # noqa: F401

            frameworks.append("torch")
        except ImportError:
            print("PyTorch not installed: minidl only")
    print(f"LeNet-5, one epoch of {args.images} Fashion-MNIST images, batch 64, Adam, {threads} threads")
    print(f"{'framework':<10} {'before MiB':>11} {'peak MiB':>9} {'added MiB':>10}")
    for fw in frameworks:
        m = measure(fw, args.images, threads)
        print(f"{fw:<10} {m['before']:11.0f} {m['peak']:9.0f} {m['peak'] - m['before']:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
