"""Every CUDA kernel compiles to PTX for compute capabilities 8.0 and 9.0 and assembles to
sm_80/sm_90 machine code, without a GPU.

The simulator runs kernels as Python and never type-checks them: a kernel can pass every
simulator test and still fail to compile for a GPU. So this test records the argument types
of every launch of the op tests (run under the simulator in a subprocess), compiles each
kernel for each of those signatures with ``numba.cuda.compile_ptx`` (which needs no GPU),
and hands the PTX to nvJitLink, which assembles it and refuses, for example, a kernel that
asks for more shared memory than a block may have. It must run without the simulator."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

from .conftest import HAS_NUMBA_CUDA, SIMULATOR

pytestmark = [
    pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed (pip install -e '.[cuda]')"),
    pytest.mark.skipif(SIMULATOR, reason="compiles for real GPUs: run without NUMBA_ENABLE_CUDASIM"),
]

ARCHS = [(8, 0), (9, 0)]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def numba_type(description):
    from numba import types
    from numba.cuda.random import xoroshiro128p_dtype
    from numba.np.numpy_support import from_dtype

    if description[0] == "array":
        _, dtype, ndim, layout = description
        dtype = xoroshiro128p_dtype if dtype == "xoroshiro128p" else np.dtype(dtype)
        return types.Array(from_dtype(dtype), ndim, layout)
    return types.boolean if description[1] == "bool" else getattr(types, description[1])


def every_kernel():
    """{(module, name): dispatcher} for every kernel (not device function) in minidl/cuda."""
    from numba.cuda.dispatcher import CUDADispatcher

    import minidl.cuda

    kernels = {}
    for info in pkgutil.iter_modules(minidl.cuda.__path__):
        module = importlib.import_module(f"minidl.cuda.{info.name}")
        for name, obj in vars(module).items():
            if (
                isinstance(obj, CUDADispatcher)
                and obj.py_func.__module__ == module.__name__
                and not obj.targetoptions.get("device")
            ):
                kernels[(module.__name__, name)] = obj
    return kernels


def assemble(ptx, arch):
    """nvJitLink: PTX -> machine code for sm_XY; returns the cubin's size in bytes."""
    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(1, [f"-arch=sm_{arch[0]}{arch[1]}"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "minidl")
        try:
            nvjitlink.complete(handle)
        except nvjitlink.nvJitLinkError:
            size = nvjitlink.get_error_log_size(handle)
            log = bytearray(size)
            nvjitlink.get_error_log(handle, log)
            raise AssertionError(log.decode(errors="replace")) from None
        return nvjitlink.get_linked_cubin_size(handle)
    finally:
        nvjitlink.destroy(handle)


@pytest.fixture
def compute_capability(monkeypatch):
    """compile_ptx of a kernel that calls a device function asks the current device for its
    compute capability; there is none here, so a stand-in answers."""
    import numba.cuda.dispatcher

    class Device:
        compute_capability = ARCHS[-1]

    monkeypatch.setattr(numba.cuda.dispatcher, "get_current_device", lambda: Device())


def test_every_kernel_compiles_to_ptx_and_assembles(tmp_path, compute_capability, capsys):
    from numba import cuda

    out = tmp_path / "launches.json"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", HYPOTHESIS_PROFILE="quick")
    subprocess.run(
        [sys.executable, "-m", "tests.cuda.record_launches", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    launched = {(r["module"], r["kernel"]): r["signatures"] for r in json.loads(out.read_text())}
    kernels = every_kernel()
    assert set(kernels) - set(launched) == set(), "kernels that the op tests never launch (add a test)"
    count = 0
    for key, kernel in sorted(kernels.items()):
        for signature in launched[key]:
            sig = tuple(numba_type(d) for d in signature)
            for arch in ARCHS:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=arch)
                assert assemble(ptx, arch) > 0
                count += 1
    with capsys.disabled():
        print(
            f"\n  PTX: {len(kernels)} kernels, {count} (kernel, signature, architecture) builds compiled and assembled"
        )
