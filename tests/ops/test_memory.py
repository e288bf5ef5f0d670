"""The allocation policy (minidl/_memory.py): a step's freed pages are reused by the next.

Each check runs in a fresh process, since the policy is set once per process at import.
"""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the policy is glibc's mallopt; it does nothing elsewhere",
)

# Five "steps", each allocating and touching 4 arrays of the given shape and then freeing
# them all; prints the page faults of steps 2-5.
STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "minidl":
    import minidl
shape = tuple(int(n) for n in sys.argv[2].split(","))
faults = []
for step in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(shape, np.float32) for _ in range(4)]
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def child(code, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    run = subprocess.run(
        [sys.executable, "-c", code, *args], env={**environ, **(env or {})}, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


@pytest.mark.parametrize(
    "shape",
    ["64,6,28,28", "64,64,32,32"],  # LeNet-5's first activation at batch 64 (1.2 MiB), a VGG block's (16 MiB)
)
def test_freed_pages_are_reused_by_the_next_step(shape):
    without = int(child(STEPS, "numpy", shape))
    if without < 100:
        pytest.skip(f"this glibc kept the freed pages by itself ({without} faults): nothing to show")
    with_minidl = int(child(STEPS, "minidl", shape))
    assert with_minidl < 50, f"{with_minidl} page faults in 4 steps with minidl's policy, {without} without"


def test_the_users_own_setting_wins():
    code = "import minidl._memory as m; print(m.applied)"
    assert child(code) == "True"
    assert child(code, env={"MALLOC_TOP_PAD_": "4096"}) == "False"
    assert child(code, env={"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False"
    assert child(code, env={"GLIBC_TUNABLES": "glibc.malloc.top_pad=4096"}) == "False"
