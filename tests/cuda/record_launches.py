"""Run the op tests under the CUDA simulator and write every kernel launch's argument types
to a JSON file: ``NUMBA_ENABLE_CUDASIM=1 python -m tests.cuda.record_launches OUT.json``.
test_ptx.py then compiles each kernel for exactly those signatures on a real target."""

import json
import os
import sys

import numba
import pytest
from numba import types


def describe(t):
    """A numba type as JSON: ["array", dtype, ndim, layout] or ["scalar", name]."""
    if isinstance(t, types.Array):
        if isinstance(t.dtype, types.Record):
            return ["array", "xoroshiro128p", t.ndim, t.layout]
        return ["array", numba.np.numpy_support.as_dtype(t.dtype).str, t.ndim, t.layout]
    return ["scalar", str(t)]


def main(out):
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me with NUMBA_ENABLE_CUDASIM=1"
    here = os.path.dirname(os.path.abspath(__file__))
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore", os.path.join(here, "test_ops.py")])
    if code != 0:
        sys.exit(f"record_launches: the op tests failed under the simulator (pytest exit {code})")
    from minidl.cuda import _launch

    launched = [
        {"module": module, "kernel": name, "signatures": sorted([describe(t) for t in sig] for sig in sigs)}
        for (module, name), sigs in sorted(_launch.launched.items())
    ]
    with open(out, "w") as f:
        json.dump(launched, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
