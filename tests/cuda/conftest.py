"""The CUDA tests. The simulator suite (every file but test_ptx.py) runs where minidl can
use CUDA: on a GPU, or in its own pytest process with NUMBA_ENABLE_CUDASIM=1 (set before
numba.cuda is imported):

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda

test_ptx.py compiles every kernel for real GPUs and must run WITHOUT the simulator. Both
skip, with the reason, when numba-cuda is not installed (pip install -e ".[cuda]")."""

import importlib.util
import os

import pytest

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def cuda_usable():
    """(usable, reason): can the device tests run in this process?"""
    if not HAS_NUMBA_CUDA:
        return False, "numba-cuda is not installed (pip install -e '.[cuda]')"
    import minidl

    if not minidl.cuda.is_available():
        return False, "no GPU: run this suite with NUMBA_ENABLE_CUDASIM=1 in its own pytest process"
    return True, ""


def pytest_collection_modifyitems(config, items):
    usable, reason = cuda_usable() if any("tests/cuda" in str(i.fspath) for i in items) else (True, "")
    for item in items:
        if "tests/cuda" not in str(item.fspath).replace(os.sep, "/"):
            continue
        if item.fspath.basename == "test_ptx.py":
            continue  # it decides for itself
        if not usable:
            item.add_marker(pytest.mark.skip(reason=reason))
