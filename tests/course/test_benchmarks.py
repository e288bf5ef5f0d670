"""benchmarks/run.py runs in its --quick smoke mode and prints its table, with PyTorch
and without it (not installed, or left out with --no-torch). Speed is never asserted."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = "minidl/torch"
# Run the script with `import torch` failing, as on a machine without PyTorch.
WITHOUT_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_script(name, *args, env=None, prefix=()):
    """The stdout of ``python [prefix] benchmarks/<name> <args>``, which must succeed."""
    result = subprocess.run(
        [sys.executable, *prefix, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{name} {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def run_benchmark(*args, block_torch=False):
    """``run.py --quick <args>``, with ``import torch`` failing if ``block_torch``."""
    prefix = ["-c", WITHOUT_TORCH] if block_torch else []
    return run_script("run.py", "--quick", *args, env={"MPLBACKEND": "Agg"}, prefix=prefix)


def table_rows(stdout, start):
    """The rows of the main table whose case name starts with ``start``, split into cells."""
    table = stdout.split(HEADER, 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[1:]  # [0] is the rest of the header line
    # a "~" in front of a time marks a noisy cell
    return [[cell.lstrip("~") for cell in line.split()[-5:]] for line in rows if line.startswith(start)]


def test_quick_run_prints_the_table():
    stdout = run_benchmark()
    assert "threads:" in stdout and "threading policy" in stdout
    assert HEADER in stdout and "minidl/numpy" in stdout and "GFLOP/s" in stdout
    for case in (
        "conv2d fwd ",
        "conv2d fwd+bwd",
        "VGG block",
        "conv_transpose2d",
        "linear",
        "maxpool2d",
        "avgpool2d",
        "batchnorm2d",
        "LeNet-5 train step",
        "digits CNN",
    ):
        rows = table_rows(stdout, case)
        assert rows, f"no row for {case!r} in:\n{stdout}"
        for minidl_ms, torch_ms, numpy_ms, *_ in rows:
            float(minidl_ms), float(numpy_ms)  # every case has a minidl and a NumPy time
            if importlib.util.find_spec("torch") is not None:
                float(torch_ms)


@pytest.mark.parametrize("how", ["not installed", "--no-torch"])
def test_quick_run_without_torch(how):
    args = ["--only", "conv1_fwd,maxpool,lenet_step"]
    if how == "--no-torch":
        stdout = run_benchmark("--no-torch", *args)
        assert "left out (--no-torch)" in stdout
    else:
        stdout = run_benchmark(*args, block_torch=True)
        assert "PyTorch: not installed" in stdout
    rows = table_rows(stdout, "")
    assert len(rows) == 4  # conv fwd, conv fwd+bwd, max pool, LeNet-5 step
    for minidl_ms, torch_ms, numpy_ms, vs_torch, vs_numpy in rows:
        float(minidl_ms), float(numpy_ms)
        assert torch_ms == "-" and vs_torch == "-" and vs_numpy.endswith("x")


def test_gpu_benchmark_runs_or_says_why_not():
    """benchmarks/gpu.py times LeNet-5 steps on a GPU; without one it says so and exits 0."""
    stdout = run_script("gpu.py", "--batch", "2", "--repeats", "1", env={"NUMBA_ENABLE_CUDASIM": "0"})
    assert "nothing to measure" in stdout or "cpu / cuda" in stdout


def test_compile_cost_lists_the_kernels_of_a_first_run_and_none_when_cached():
    cold, warm = run_script("compile_cost.py", "--lenet", "--top", "30").split("warm cache")
    assert "cold cache" in cold and "minidl.ops.conv2d.conv2d_forward_kernel" in cold
    assert "compiling 0.00 s in 0 kernels" in warm  # every kernel of the step is cached (cache=True)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the peak-memory reset needs Linux's /proc")
def test_memory_prints_the_peak_of_an_epoch():
    from minidl.data import load_mnist

    try:
        load_mnist("fashion", "test", download=False)
    except (FileNotFoundError, OSError, ValueError):
        pytest.skip("Fashion-MNIST is not on disk (apt-get install dataset-fashion-mnist)")
    stdout = run_script("memory.py", "--images", "256", "--no-torch")
    before, peak, added = stdout.split("minidl", 2)[-1].split()
    assert float(peak) >= float(before) > 0 and abs(float(added) - (float(peak) - float(before))) <= 1  # rounded
