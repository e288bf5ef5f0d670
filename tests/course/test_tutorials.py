"""Every tutorial and the demo run end to end in their --quick smoke mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))


def run_script(args, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, *args, "--quick", "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_quick(script, tmp_path):
    run_script([str(script)], tmp_path)
    assert list(tmp_path.glob("*.png")), f"{script.name} saved no figure"


def test_demo_quick(tmp_path):
    stdout = run_script(["-m", "minidl.demo"], tmp_path)
    assert "test accuracy" in stdout
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.name in stdout for p in pngs)
