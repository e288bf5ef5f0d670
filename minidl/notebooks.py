"""``python -m minidl.notebooks``: the tutorials as Jupyter notebooks.

Each tutorial is a ``# %%`` script (jupytext's "percent" format): ``# %% [markdown]``
cells are the text with its LaTeX, ``# %%`` cells the code. This writes one ``.ipynb``
per tutorial (generated, never committed) and can run them:

    pip install -e ".[notebooks]"
    python -m minidl.notebooks                          # writes notebooks/NN_name.ipynb
    python -m minidl.notebooks --execute 01 04 --quick  # ... and runs two of them

A notebook runs in the folder it is written to (its figures go to ``outputs/`` there);
``--quick`` runs them in quick mode (``MINIDL_QUICK=1``: a notebook has no command line).
The tutorials live in the repository, so this works from a clone (an editable install).
"""

import argparse
import os
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"


def tutorials(prefixes=None):
    """The tutorial scripts, all of them or those whose names start with one of ``prefixes``."""
    scripts = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
    if prefixes:
        scripts = [s for s in scripts if s.name.startswith(tuple(prefixes))]
        if not scripts:
            raise ValueError(f"no tutorial in {TUTORIALS} starts with {list(prefixes)}")
    return scripts


def write(out="notebooks", prefixes=None):
    """Write ``out/NN_name.ipynb`` for each tutorial; return their paths."""
    import jupytext

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for script in tutorials(prefixes):
        notebook = jupytext.read(script, fmt="py:percent")
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = out / f"{script.stem}.ipynb"
        jupytext.write(notebook, path)
        paths.append(path)
    return paths


def execute(path, quick=True, timeout=900):
    """Run the notebook at ``path`` top to bottom with nbclient (in its folder), store the
    outputs in it, and return it; quick mode by default."""
    import nbclient
    import nbformat

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    before = os.environ.get("MINIDL_QUICK")
    os.environ["MINIDL_QUICK"] = "1" if quick else "0"  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        if before is None:
            os.environ.pop("MINIDL_QUICK")
        else:
            os.environ["MINIDL_QUICK"] = before
    nbformat.write(notebook, path)
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="notebooks", help="folder for the notebooks (default: notebooks)")
    parser.add_argument("--execute", nargs="*", metavar="NN", help="run the tutorials with these numbers (e.g. 01 04)")
    parser.add_argument("--quick", action="store_true", help="run them in quick mode")
    args = parser.parse_args(argv)
    paths = write(args.out)
    for path in paths:
        print("wrote", path)
    chosen = {script.stem for script in tutorials(args.execute)} if args.execute else set()
    for path in paths:
        if path.stem in chosen:
            execute(path, quick=args.quick)
            print("ran", path)


if __name__ == "__main__":
    main()
