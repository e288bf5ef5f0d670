"""The README's Quickstart is exactly two one-line commands, and CI runs the second; its
debugger recipe stops where it says it does."""

import os
import re
import shlex
import subprocess
import sys
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


def test_the_debugger_recipe_lands_on_the_line_it_shows():
    """Replay the README's pdb session: the same command, the same (Pdb) commands; pdb must
    stop on the file, line and source line the README prints."""
    section = (ROOT / "README.md").read_text().split("## Stepping through an op", 1)[1]
    command = re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)
    session = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    pdb_commands = [line[len("(Pdb) ") :] for line in session.splitlines() if line.startswith("(Pdb) ")]
    stop = re.search(r"^> (\S+)\((\d+)\)(\w+)\(\)\n-> (.*)$", session, re.M)
    words = shlex.split(command)
    env = dict(os.environ, **dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-")))
    argv = [w for w in words if not ("=" in w and not w.startswith("-"))]
    assert argv[:2] == ["python", "-c"]
    out = subprocess.run(
        [sys.executable, "-c", argv[2]],
        input="\n".join(pdb_commands + ["q"]) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    ).stdout
    path, line, function, source = stop.groups()
    assert f"{path}({line}){function}()\n-> {source}" in out.replace(str(ROOT) + os.sep, ""), out
    printed = session.splitlines()[-1]
    assert printed in out, out
