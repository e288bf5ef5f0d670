"""What the CUDA tests share: moving arrays, comparing the two targets, small models."""

import importlib

import numpy as np

import minidl
from minidl import nn

RTOL = {np.float32: 1e-5, np.float64: 1e-10}  # the GPU must equal the CPU to this
# Absolute, for values near zero: a sum of ~50 float32 products of size ~3 that cancels to
# ~1e-4 carries a rounding error of up to 50 * 3 * 6e-8 ~ 1e-5 on the CPU (float32 BLAS)
# where the GPU's tiles sum in float64 (a fresh clone's hypothesis drew such a dw: 1.06e-6).
ATOL = {np.float32: 1e-5, np.float64: 1e-12}


def cpu_and_cuda(name):
    """The two modules of op ``name``: (minidl.ops.name, minidl.cuda.name)."""
    return importlib.import_module(f"minidl.ops.{name}"), importlib.import_module(f"minidl.cuda.{name}")


def dev(a):
    """A host array (or a tuple of them) on the device."""
    if isinstance(a, tuple):
        return tuple(dev(v) for v in a)
    return minidl.to_device(a, "cuda") if isinstance(a, np.ndarray) else a


def host(a):
    if isinstance(a, (tuple, list)):
        return type(a)(host(v) for v in a)
    if isinstance(a, dict):
        return {k: host(v) for k, v in a.items()}
    return minidl.to_device(a, "cpu") if minidl.device_of(a) == "cuda" else a


def assert_same(cpu, gpu, dtype, what="output", loose=False):
    """The GPU's result equals the CPU's (arrays, tuples of them, floats, None). ``loose``:
    a whole float32 network, where the rounding of one op feeds the next, to 1e-4."""
    gpu = host(gpu)
    if isinstance(cpu, (tuple, list)):
        assert len(cpu) == len(gpu)
        for i, (a, b) in enumerate(zip(cpu, gpu)):
            assert_same(a, b, dtype, f"{what}[{i}]", loose)
        return
    if isinstance(cpu, dict):
        assert cpu.keys() == gpu.keys()
        for k in cpu:
            assert_same(cpu[k], gpu[k], dtype, f"{what}[{k!r}]", loose)
        return
    if cpu is None:
        assert gpu is None, what
        return
    if isinstance(cpu, np.ndarray):
        assert gpu.shape == cpu.shape and gpu.dtype == cpu.dtype, (
            f"{what}: {gpu.shape} {gpu.dtype} vs {cpu.shape} {cpu.dtype}"
        )
    rtol, atol = (1e-4, 1e-5) if loose and dtype == np.float32 else (RTOL[dtype], ATOL[dtype])
    np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=atol, err_msg=what)


def tiny_lenet():
    """LeNet-5's layer sequence on 1x12x12 images: conv 5x5 pad 2, pool, conv 5x5, pool, three Linears."""
    return nn.Sequential(
        nn.Conv2d(1, 3, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 1 * 1, 6),
        nn.ReLU(),
        nn.Linear(6, 5),
        nn.ReLU(),
        nn.Linear(5, 3),
    )
