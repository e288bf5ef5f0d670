"""Reference loops: run the textbook form of an op instead of its fast form.

Where an op's fast kernel computes its sum in another shape than the docstring writes it
(conv2d as im2col + one matrix product per image, cut into chunks per thread; linear as
BLAS calls), the op file shows the textbook loop first: a reference kernel that mirrors
the docstring's sum index for index. The tests hold the fast kernel equal to it.

Select the reference kernels to read or step through them:

    MINIDL_REFERENCE=1 NUMBA_DISABLE_JIT=1 python my_script.py     # for a whole run
    with minidl.reference_loops():                                  # for a block of code
        y = model(x)

They are slow (no BLAS, no threads): use tiny shapes. Only the CPU kernels have a
reference form; the CUDA kernels are already one thread per output element.
"""

import contextlib
import os

_enabled = os.environ.get("MINIDL_REFERENCE", "0") not in ("", "0")


def enabled():
    """True when the ops should run their reference loops (``MINIDL_REFERENCE=1``)."""
    return _enabled


@contextlib.contextmanager
def reference_loops(on=True):
    """Run the ops' reference loops (``on=True``) or their fast kernels inside the block."""
    global _enabled
    before, _enabled = _enabled, bool(on)
    try:
        yield
    finally:
        _enabled = before
