"""The op protocol (CONTRIBUTING.md): every op module in minidl/ops has a twin in
minidl/cuda with the same public functions and the same signatures, and vice versa. The
CUDA modules are only inspected (imported), which needs numba-cuda but no GPU."""

import importlib
import inspect
import pkgutil

import numba
import pytest

import minidl.ops

pytest.importorskip("numba_cuda", reason="the CUDA twins need numba-cuda (pip install -e '.[cuda]')")
pytestmark = pytest.mark.skipif(
    numba.config.DISABLE_JIT,
    reason="with NUMBA_DISABLE_JIT=1 the kernels are plain functions, indistinguishable from the public API;"
    " the protocol is checked in the normal run",
)


def op_modules(package):
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))


def public_functions(module, twin_name):
    """Plain functions of ``module`` that do not start with '_', defined there or in its twin."""
    return {
        name: f
        for name, f in vars(module).items()
        if inspect.isfunction(f) and not name.startswith("_") and f.__module__ in (module.__name__, twin_name)
    }


def test_every_op_has_a_cuda_twin_and_nothing_else_is_there():
    import minidl.cuda

    assert op_modules(minidl.ops) == op_modules(minidl.cuda)


@pytest.mark.parametrize("name", op_modules(minidl.ops))
def test_twins_export_the_same_functions_with_the_same_signatures(name):
    cpu = importlib.import_module(f"minidl.ops.{name}")
    gpu = importlib.import_module(f"minidl.cuda.{name}")
    cpu_functions = public_functions(cpu, gpu.__name__)
    gpu_functions = public_functions(gpu, cpu.__name__)
    assert cpu_functions.keys() == gpu_functions.keys()
    for fname in cpu_functions:
        assert inspect.signature(cpu_functions[fname]) == inspect.signature(gpu_functions[fname]), f"{name}.{fname}"
