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

It also fixes the size from which glibc gives an array pages of its own (``mmap``, handed
back to the system at ``free``, so faulted in afresh every time) instead of heap memory:
``M_MMAP_THRESHOLD``, 32 MiB. Left alone, glibc raises that threshold by itself, up to 32
MiB, as it sees large arrays freed; but setting any of these options turns that rule off
and freezes the threshold where it stood at ``import minidl``, which depends on what was
imported before (measured: 8 to 16 MiB). Every larger activation (a VGG block's 16 MiB
at batch 64) then faulted in all of its pages at every step: 2080 faults in four steps of
four (64, 64, 32, 32) float32 arrays, 0 with the threshold set; with PyTorch imported, 1030
per max-pooling call on (64, 32, 32, 32), which then took 5.1 ms instead of 2.9.

Linux with glibc only; elsewhere, or when the user has set ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_THRESHOLD_`` or a ``glibc.malloc`` tunable themselves, it does nothing.
``import minidl`` calls it.
"""

import ctypes
import os
import platform
import sys

M_TOP_PAD = -2  # mallopt's parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
TOP_PAD_BYTES = 64 << 20
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own ceiling for it on 64-bit systems

applied = None  # after the first call: whether the policy (both settings) was set


def keep_freed_memory():
    """Set glibc's top pad to TOP_PAD_BYTES and its mmap threshold to MMAP_THRESHOLD_BYTES,
    once; returns whether they are set."""
    global applied
    if applied is None:
        if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
            applied = False
        elif (
            "MALLOC_TOP_PAD_" in os.environ
            or "MALLOC_MMAP_THRESHOLD_" in os.environ
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
        ):
            applied = False  # the user's own setting wins
        else:
            mallopt = ctypes.CDLL(None).mallopt
            applied = mallopt(M_TOP_PAD, TOP_PAD_BYTES) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return applied
