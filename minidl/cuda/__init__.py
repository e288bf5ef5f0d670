"""The CUDA target: every op of ``minidl/ops/`` again as numba.cuda kernels, one module per
op, with the same function names and signatures (the dispatch seam picks one or the other
by where the arrays live; see CONTRIBUTING.md for the op protocol).

Reading order: ``_launch.py`` (threads, blocks, the grid-stride loop), ``relu.py`` (the
simplest kernel), ``_reduce.py`` (a shared-memory tree sum), ``_gemm.py`` (the tiled matrix
product), then ``conv2d.py``. Each kernel's docstring says which thread computes which
output element; the math is in the CPU file of the same name.

Nothing here is imported by ``import minidl``: ``is_available()`` below is the only name
that works without NVIDIA's ``numba-cuda`` package (``pip install -e ".[cuda]"``).
Set ``NUMBA_ENABLE_CUDASIM=1`` before anything imports numba.cuda to run every kernel in
the CUDA simulator (each GPU thread a Python thread), without a GPU and in a debugger.
"""

import importlib.util


def is_available():
    """True when minidl can run on CUDA: numba-cuda is installed and there is a GPU, or the
    simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False
    from numba import cuda

    return bool(cuda.is_available())
