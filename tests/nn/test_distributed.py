"""Beyond one machine: examples/distributed_torch.py exports a minidl model with to_torch,
trains it with DistributedDataParallel (gloo, two processes, loopback) and checks that both
ranks end bit-identical and equal to one process on the whole batches."""

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the distributed example (pip install torch)")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this PyTorch build has no gloo backend", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_ranks_with_ddp_end_identical_and_equal_to_one_process():
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "distributed_torch.py"), "--steps", "4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ranks bit-identical: True" in run.stdout
    gap = float(run.stdout.split("max |DDP - one process| over all weights: ")[1].split()[0])
    assert gap < 1e-12 and run.stdout.rstrip().endswith("OK")
