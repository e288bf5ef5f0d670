"""MkDocs hooks: the site's pages are made from the sources, so nothing is written twice.

- ``index.md`` is README.md, ``contributing.md`` is CONTRIBUTING.md;
- ``tutorials/NN_name.md`` is ``tutorials/NN_name.py``: its ``# %% [markdown]`` cells as
  text (with their LaTeX), its code cells as code, and after each cell the figures it saved
  (``minidl.tutorial.save``) when a run of the tutorial left them in the figures folder
  (``MINIDL_DOCS_FIGURES``, default ``outputs``), marked when they come from a quick run;
- ``ops/<name>.md`` is the docstring of ``minidl/ops/<name>.py`` (its equations rendered),
  links to the CPU and CUDA source, and the op's public functions (mkdocstrings);
- ``source/<path>.md`` shows a source file, for those links;
- MathJax is copied into the site from the ``django-static-mathjax`` package, so the math
  renders without a network.
"""

import ast
import json
import os
import re
import shutil
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
FIGURES = Path(os.environ.get("MINIDL_DOCS_FIGURES", ROOT / "outputs"))
OPS = sorted(p for p in (ROOT / "minidl" / "ops").glob("*.py") if p.name != "__init__.py")
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))


def tutorial_page(path):
    """The ``# %%`` script as markdown: text cells as text, code cells fenced, figures after."""
    record = json.loads((FIGURES / "figures.json").read_text()) if (FIGURES / "figures.json").exists() else {}
    cells = re.split(r"^# %%(.*)$", path.read_text(), flags=re.M)  # [before, kind, body, kind, body, ...]
    parts, images = [], []
    for kind, body in zip(cells[1::2], cells[2::2]):
        if "[markdown]" in kind:
            parts.append(
                "\n".join(
                    line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.strip("\n").splitlines()
                )
            )
            continue
        code = body.strip("\n")
        if code:
            parts.append(f"```python\n{code}\n```")
        for name in re.findall(r'save\([^,]+, "([^"]+\.png)"\)', code):
            if (FIGURES / name).exists():
                images.append(name)
                note = " (from a `--quick` smoke run: its numbers mean nothing)" if record.get(name) == "quick" else ""
                parts.append(f"![{name}](figures/{name})\n\n*{name}*{note}")
    source = f"[the script](../source/tutorials/{path.name}.md), `python tutorials/{path.name}`"
    parts.insert(1, f'!!! note "Run it"\n    This page is {source}.')
    return "\n\n".join(parts) + "\n", images


def public_functions(path):
    """The op's public functions: not helpers (``_``), not kernels, not the reference loops."""
    return [
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
        and not node.name.startswith(("_", "reference_"))
        and not node.name.endswith("_kernel")
    ]


def markdown_text(docstring):
    """A plain-text docstring as markdown: indented blocks stay code, ``code`` and $math$
    stay as they are, and a ``*`` in the prose (``C*KH*KW``) is a star, not emphasis."""
    out = []
    for block in re.split(r"\n\s*\n", docstring):
        lines = block.splitlines()
        if lines and all(line.startswith("    ") for line in lines if line.strip()):
            out.append(block)
            continue
        pieces = re.split(r"(``.*?``|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$)", block, flags=re.S)
        out.append("".join(p if i % 2 else p.replace("*", "\\*") for i, p in enumerate(pieces)))
    return "\n\n".join(out)


def op_page(path):
    name = path.stem
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    title, _, body = docstring.partition("\n")
    cuda = ROOT / "minidl" / "cuda" / path.name
    links = f"CPU source: [minidl/ops/{path.name}](../source/minidl/ops/{path.name}.md)"
    if cuda.exists():
        links += f" · CUDA source: [minidl/cuda/{path.name}](../source/minidl/cuda/{path.name}.md)"
    functions = "".join(
        f"::: minidl.ops.{name}.{function}\n    options:\n      show_root_heading: true\n\n"
        for function in public_functions(path)
    )
    return f"# {name}\n\n**{title.strip()}**\n\n{links}\n\n{markdown_text(body.strip())}\n\n## Functions\n\n{functions}"


def source_page(rel):
    return f"# {rel}\n\n```python\n{(ROOT / rel).read_text()}```\n"


def on_files(files, config):
    def add(uri, content):
        files.append(File.generated(config, uri, content=content))

    add("index.md", (ROOT / "README.md").read_text())
    add("contributing.md", (ROOT / "CONTRIBUTING.md").read_text())
    for path in TUTORIALS:
        page, images = tutorial_page(path)
        add(f"tutorials/{path.stem}.md", page)
        add(f"source/tutorials/{path.name}.md", source_page(f"tutorials/{path.name}"))
        for image in images:
            files.append(File.generated(config, f"tutorials/figures/{image}", abs_src_path=str(FIGURES / image)))
    for path in OPS:
        add(f"ops/{path.stem}.md", op_page(path))
        for folder in ("ops", "cuda"):
            if (ROOT / "minidl" / folder / path.name).exists():
                add(f"source/minidl/{folder}/{path.name}.md", source_page(f"minidl/{folder}/{path.name}"))
    return files


def on_config(config):
    """The navigation: the generated pages, in order."""
    config["nav"] = [
        {"Home": "index.md"},
        {"Tutorials": [{p.stem.replace("_", " ", 1): f"tutorials/{p.stem}.md"} for p in TUTORIALS]},
        {"Ops": [{p.stem: f"ops/{p.stem}.md"} for p in OPS]},
        {"API": [{title: f"api/{page}.md"} for title, page in API]},
        {"Contributing": "contributing.md"},
    ]
    return config


API = [
    ("Layers (minidl.nn)", "nn"),
    ("Optimizers (minidl.optim)", "optim"),
    ("Training (minidl.train)", "train"),
    ("Data (minidl.data)", "data"),
    ("Metrics, detection, detectors", "metrics"),
    ("Saving, anomalies, profiling, reference loops", "misc"),
    ("PyTorch and ONNX (minidl.interop)", "interop"),
]


def on_post_build(config):
    """Serve MathJax from the site: its TeX-to-HTML bundle and the fonts it loads."""
    import mathjax  # the django-static-mathjax package: MathJax 3's files, no Django needed

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = Path(config["site_dir"]) / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / "tex-chtml.js", target / "tex-chtml.js")
    shutil.copytree(
        es5 / "output" / "chtml" / "fonts" / "woff-v2", target / "output/chtml/fonts/woff-v2", dirs_exist_ok=True
    )
