"""The documentation site: it builds strictly from the sources, no page links to a missing
page or file, and in a real browser (headless Chromium) its math is typeset by MathJax,
not left as raw TeX. Skipped, with the reason, without mkdocs (the ``docs`` extra) or
without a Chromium binary."""

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("mathjax", reason="the docs extra is not installed (pip install -e '.[docs]')")
CHROMIUM = next(
    (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built strictly, with the figures of a quick run of tutorial 01."""
    site_dir, figures = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("figures")
    run = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "01_perceptron.py"), "--quick", "--out", str(figures)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, MINIDL_DOCS_FIGURES=str(figures)),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return site_dir


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.targets.append(value)


def test_every_page_of_the_site_is_built(site):
    pages = {p.relative_to(site).parent.as_posix() for p in site.rglob("index.html")}
    tutorials = {f"tutorials/{p.stem}" for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py")}
    ops = {f"ops/{p.stem}" for p in (ROOT / "minidl" / "ops").glob("*.py") if p.stem != "__init__"}
    assert tutorials | ops | {".", "contributing", "api/nn"} <= pages


def test_a_tutorial_page_shows_the_figures_its_run_saved(site):
    page = (site / "tutorials" / "01_perceptron" / "index.html").read_text()
    for name in ("01_perceptron_boundary.png", "01_zero_grad.png", "01_xor_mlp.png"):
        assert f'src="../figures/{name}"' in page and (site / "tutorials" / "figures" / name).exists()
    assert "from a <code>--quick</code> smoke run" in page


def test_no_page_has_a_broken_link(site):
    broken = []
    for page in site.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text())
        for target in parser.targets:
            parts = urlsplit(target)
            if parts.scheme or target.startswith(("#", "mailto:", "//")):
                continue
            base = site if parts.path.startswith("/") else page.parent  # 404.html links from the root
            path = (base / unquote(parts.path).lstrip("/")).resolve()
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert not broken, "\n".join(broken[:20])


def dom_in_chromium(url):
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium)")
@pytest.mark.parametrize("page", ["tutorials/06_batchnorm_dropout_resnet/", "ops/conv2d/"])
def test_math_is_typeset_in_a_real_browser(site, page):
    """Served over HTTP as `mkdocs serve` would: MathJax (from the site itself, no network)
    turns every arithmatex block into rendered math, leaving no raw TeX delimiters."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dom = dom_in_chromium(f"http://127.0.0.1:{server.server_address[1]}/{page}")
    finally:
        server.shutdown()
    source = (site / page / "index.html").read_text()
    expected = source.count('class="arithmatex"')
    assert expected > 3, "the page has no math to check"
    assert dom.count("<mjx-container") >= expected, "MathJax did not typeset the page's math"
    text = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
    assert "\\[" not in text and "\\(" not in text and "$$" not in text, "raw TeX left on the page"
