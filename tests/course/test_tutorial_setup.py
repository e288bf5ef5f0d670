"""minidl.tutorial, the set-up every tutorial shares, and minidl.reference's switch."""

import json
import os
import subprocess
import sys

import matplotlib
import pytest

import minidl
from minidl import reference, tutorial

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def test_setup_parses_the_shared_options_and_the_tutorial_s_own(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINIDL_QUICK", raising=False)
    monkeypatch.setattr(sys, "argv", ["t.py", "--out", str(tmp_path / "figs"), "--epochs", "3", "--lr", "0.5"])
    args = tutorial.setup("demo", epochs=10, lr=0.1, seed=4)
    assert (args.quick, args.epochs, args.lr, args.seed) == (False, 3, 0.5, 4)
    assert args.out == tmp_path / "figs" and args.out.is_dir()
    assert "QUICK MODE" not in capsys.readouterr().out


@pytest.mark.parametrize("argv, env", [(["--quick"], None), ([], "1")])
def test_quick_mode_comes_from_the_flag_or_the_environment_and_says_so_first(tmp_path, monkeypatch, capsys, argv, env):
    monkeypatch.setattr(sys, "argv", ["t.py", "--out", str(tmp_path), *argv])
    if env is None:
        monkeypatch.delenv("MINIDL_QUICK", raising=False)
    else:
        monkeypatch.setenv("MINIDL_QUICK", env)
    assert tutorial.setup("demo").quick
    assert capsys.readouterr().out.startswith("QUICK MODE")


def test_setup_seeds_minidl(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["t.py", "--out", str(tmp_path), "--seed", "7"])
    tutorial.setup("demo")
    first = minidl.nn.Linear(3, 2).weight.data.copy()
    tutorial.setup("demo")
    assert (minidl.nn.Linear(3, 2).weight.data == first).all()


def test_save_writes_the_figure_and_records_the_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["t.py", "--out", str(tmp_path), "--quick"])
    tutorial.setup("demo")
    tutorial.save(plt.figure(), "a.png")
    monkeypatch.setattr(sys, "argv", ["t.py", "--out", str(tmp_path)])
    monkeypatch.delenv("MINIDL_QUICK", raising=False)
    tutorial.setup("demo")
    tutorial.save(plt.figure(), "b.png")
    assert (tmp_path / "a.png").exists() and (tmp_path / "b.png").exists()
    assert json.loads((tmp_path / "figures.json").read_text()) == {"a.png": "quick", "b.png": "full"}
    assert f"saved {tmp_path / 'b.png'}" in capsys.readouterr().out


def test_headline_prints_one_readable_line(capsys):
    tutorial.headline("test_accuracy", 0.91234)
    assert capsys.readouterr().out == "headline: test_accuracy = 0.9123\n"


def test_reference_loops_switch_on_and_back_even_after_an_error():
    assert not reference.enabled()
    with pytest.raises(RuntimeError):
        with minidl.reference_loops():
            assert reference.enabled()
            raise RuntimeError
    assert not reference.enabled()


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("", False)])
def test_minidl_reference_in_the_environment_selects_the_loops(value, expected):
    out = subprocess.run(
        [sys.executable, "-c", "from minidl import reference; print(reference.enabled())"],
        env=dict(os.environ, MINIDL_REFERENCE=value),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert out.strip() == str(expected)
