"""minidl's thread pool (minidl/_threads.py): ``run_chunks`` runs every chunk exactly once,
on the caller and the helper threads, raises a chunk's error, survives errors, concurrent
callers and fork, and runs everything on the caller with ``NUMBA_DISABLE_JIT=1``; every
kernel handed to it releases the GIL (``nogil=True``), or the chunks would take turns."""

import ast
import importlib
import os
import threading
from pathlib import Path

import numba
import numpy as np
import pytest

from minidl import _threads
from minidl._threads import chunks, run_chunks

OPS = Path(__file__).resolve().parents[2] / "minidl" / "ops"
THREADS = numba.config.NUMBA_NUM_THREADS
needs_two = pytest.mark.skipif(THREADS < 2, reason="needs NUMBA_NUM_THREADS >= 2")
jitted = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled kernels only")


@numba.njit(nogil=True)
def label_rows(t, T, out):
    """out[n] = t for the rows n of chunk t of T."""
    N = out.shape[0]
    for n in range(t * N // T, (t + 1) * N // T):
        out[n] = t


@pytest.mark.parametrize("N", [1, 2, 3, 7, 64])
def test_every_row_belongs_to_exactly_one_chunk(N):
    for T in range(1, min(THREADS, N) + 1):
        out = np.full(N, -1, np.int64)
        run_chunks(label_rows, T, out)
        expected = np.concatenate([np.full((t + 1) * N // T - t * N // T, t) for t in range(T)])
        np.testing.assert_array_equal(out, expected)


def test_chunks_is_one_per_thread_and_never_empty():
    assert chunks(1) == 1
    assert chunks(10**6) == numba.get_num_threads()
    assert all(1 <= chunks(N) <= N for N in range(1, 9))


def test_a_bad_chunk_count_is_refused():
    for T in (0, THREADS + 1):
        with pytest.raises(ValueError, match="run_chunks: T must be between 1 and"):
            run_chunks(label_rows, T, np.zeros(4, np.int64))


def record_thread(t, T, names):
    names[t] = threading.current_thread().name


@needs_two
@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT every chunk runs on the caller")
def test_chunk_0_runs_on_the_caller_and_the_others_on_helpers():
    names = {}
    run_chunks(record_thread, 2, names)
    assert names == {0: threading.current_thread().name, 1: "minidl-1"}


@needs_two
def test_without_the_jit_every_chunk_runs_on_the_caller(monkeypatch):
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    names = {}
    run_chunks(record_thread, 2, names)
    assert set(names.values()) == {threading.current_thread().name}


def fail_in(bad):
    def kernel(t, T, out):
        if t == bad:
            raise RuntimeError(f"chunk {t} failed")
        out[t] = 1

    return kernel


@needs_two
@pytest.mark.parametrize("bad", [0, 1])
def test_an_error_in_any_chunk_is_raised_after_all_chunks_are_done(bad):
    out = np.zeros(2, np.int64)
    with pytest.raises(RuntimeError, match=f"chunk {bad} failed"):
        run_chunks(fail_in(bad), 2, out)
    if not numba.config.DISABLE_JIT:  # (one after the other, the first error stops the rest)
        assert out[1 - bad] == 1  # the other chunk ran to its end before the error came out
    run_chunks(label_rows, 2, out)  # and the helpers still work
    np.testing.assert_array_equal(out, [0, 1])


@needs_two
def test_callers_on_several_threads_each_get_their_own_result():
    outs = [np.full(1000, -1, np.int64) for _ in range(4)]

    def caller(out):
        for _ in range(50):
            run_chunks(label_rows, 2, out)

    threads = [threading.Thread(target=caller, args=(out,)) for out in outs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for out in outs:
        np.testing.assert_array_equal(out, np.repeat([0, 1], 500))


@needs_two
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_helpers():
    out = np.zeros(4, np.int64)
    run_chunks(label_rows, 2, out)  # the parent's helpers exist now
    pid = os.fork()
    if pid == 0:  # the child: the parent's helper threads are not here
        try:
            child_out = np.full(4, -1, np.int64)
            run_chunks(label_rows, 2, child_out)
            os._exit(0 if child_out.tolist() == [0, 0, 1, 1] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def kernels_handed_to_run_chunks():
    """(module name, kernel name) for every ``run_chunks(kernel, ...)`` call in minidl/ops."""
    for path in sorted(OPS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_chunks":
                yield f"minidl.ops.{path.stem}", node.args[0].id


@jitted
def test_every_chunk_kernel_releases_the_gil():
    found = list(kernels_handed_to_run_chunks())
    assert len(found) >= 16, found  # conv2d, linear, pools, batch norm, im2col
    for module, name in found:
        kernel = getattr(importlib.import_module(module), name)
        assert kernel.targetoptions.get("nogil"), f"{module}.{name} must be @njit(nogil=True)"


def test_the_counters_start_even():
    """Every chunk handed to a helper was reported finished (nothing left over from the
    tests above)."""
    np.testing.assert_array_equal(_threads._posted, _threads._finished)
