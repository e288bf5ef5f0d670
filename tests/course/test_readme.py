"""The README's Quickstart is exactly two one-line commands, and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_has_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "minidl.demo" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart_commands()[1] in [line.strip() for line in ci]
