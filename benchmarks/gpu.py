"""LeNet-5 training steps on a GPU: minidl on "cuda" against minidl on the CPU and PyTorch
CUDA (when PyTorch with CUDA is installed): ``python benchmarks/gpu.py``.

For each batch size, the CPU and GPU models start from the same weights and their first
losses are checked equal; then each framework's training step (forward, loss, backward,
SGD step) is warmed up and timed. minidl's step ends with the loss as a Python float, a copy
from the device, so every timed step has finished on the GPU; PyTorch's is synchronised.
The goal of issue 8: at batch 256, the GPU step at least 10x faster than the CPU's.

    python benchmarks/gpu.py                      # batch 64 and 256, 20 timed steps each
    python benchmarks/gpu.py --batch 256 --repeats 50
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu.py --simulator --batch 1 --repeats 1
                                                  # a smoke run in the CUDA simulator: its
                                                  # times mean nothing and are labelled so
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402
from run import lenet, timed_ms, to_torch  # noqa: E402

import minidl  # noqa: E402
from minidl import nn, optim  # noqa: E402


def step_fn(model, x, y):
    """One SGD training step of ``model`` on the batch (x, y), already on its device."""
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.01)

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        model.backward_params(loss_fn.backward())  # no gradient for the images, as in PyTorch
        opt.step()
        return loss

    return step


def torch_cuda_step(model, x, y):
    """The same step in PyTorch on CUDA, or None without PyTorch or CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    tmodel = to_torch(model, torch).cuda()
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01)
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def step():
        topt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()
        torch.cuda.synchronize()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--simulator", action="store_true", help="allow a smoke run in the CUDA simulator")
    args = parser.parse_args(argv)
    if not minidl.cuda.is_available():
        print("no CUDA device (minidl.cuda.is_available() is False): nothing to measure")
        return 0
    from numba import cuda

    simulated = bool(cuda.config.ENABLE_CUDASIM)
    if simulated and not args.simulator:
        print("the CUDA simulator is on: its times are not a GPU's (pass --simulator for a smoke run)")
        return 2
    device = "CUDA simulator (times meaningless)" if simulated else cuda.get_current_device().name
    if isinstance(device, bytes):
        device = device.decode()
    print(f"device: {device}; minidl's CPU side on {numba.get_num_threads()} Numba threads")
    print(f"{'batch':>6} {'minidl cpu ms':>14} {'minidl cuda ms':>15} {'torch cuda ms':>14} {'cpu / cuda':>11}")
    for N in args.batch:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (N, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, N)
        minidl.seed(0)
        cpu = lenet()
        gpu = lenet()
        gpu.load_state_dict(cpu.state_dict())
        gpu.to("cuda")
        torch_step = torch_cuda_step(cpu, x, y)
        cpu_step = step_fn(cpu, x, y)
        gpu_step = step_fn(gpu, minidl.to_device(x, "cuda"), minidl.to_device(y, "cuda"))
        first_cpu, first_gpu = cpu_step(), gpu_step()  # also the warm-up: kernels compile here
        if not np.isclose(first_cpu, first_gpu, rtol=1e-4):
            raise SystemExit(f"batch {N}: the first losses differ: cpu {first_cpu}, cuda {first_gpu}")
        warmup = 1 if simulated else 3
        t_cpu = statistics.median(timed_ms(cpu_step, args.repeats, warmup))
        t_gpu = statistics.median(timed_ms(gpu_step, args.repeats, warmup))
        t_torch = statistics.median(timed_ms(torch_step, args.repeats, warmup)) if torch_step else None
        torch_cell = f"{t_torch:14.2f}" if t_torch is not None else f"{'-':>14}"
        print(f"{N:>6} {t_cpu:14.2f} {t_gpu:15.2f} {torch_cell} {t_cpu / t_gpu:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
