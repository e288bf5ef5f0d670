"""One allocation policy: keep freed memory for the next step instead of returning it.

A training step allocates the same arrays every time (each layer's output, each
gradient), and frees them all by the end of the step. glibc's ``malloc`` gives memory
freed at the top of its heap back to the operating system once more than a few MiB lie
free there, so the next step's arrays come back as fresh pages: the kernel zeroes each
4 KiB page on its first touch (a "page fault"). Measured on 2 cores, one LeNet-5
training step (batch 64) took about 280 page faults, and a median of 6.5-6.8 ms over 200
steps against 5.9-6.0 ms with the policy below (0 faults), in three alternating pairs of
runs.

``keep_freed_memory()`` asks glibc (``mallopt(M_TOP_PAD, 64 MiB)``) to keep up to 64 MiB
free at the top of the heap whenever it grows or shrinks: a step then reuses the pages the
previous one freed. The process holds at most that much more than it uses (the peak
of a Fashion-MNIST epoch stays far under PyTorch's, ``benchmarks/memory.py``). PyTorch's
GPU allocator does the same thing for its own reasons ("caching allocator").

Linux with glibc only; elsewhere, or when the user has set ``MALLOC_TOP_PAD_`` or a
``glibc.malloc`` tunable themselves, it does nothing. ``import minidl`` calls it.
"""

import ctypes
import os
import platform
import sys

M_TOP_PAD = -2  # mallopt's parameter number, from glibc's <malloc.h>
TOP_PAD_BYTES = 64 << 20

applied = None  # after the first call: whether the top pad was set


def keep_freed_memory():
    """Set glibc's top pad to TOP_PAD_BYTES, once; returns whether it is set."""
    global applied
    if applied is None:
        if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
            applied = False
        elif "MALLOC_TOP_PAD_" in os.environ or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
            applied = False  # the user's own setting wins
        else:
            applied = ctypes.CDLL(None).mallopt(M_TOP_PAD, TOP_PAD_BYTES) == 1
    return applied
