"""The tutorials open as notebooks: every script converts (jupytext), its markdown cells
keep their LaTeX, and two of them run top to bottom in quick mode under a real Jupyter
kernel (nbclient). Skipped, with the reason, without the ``notebooks`` extra."""

import pytest

pytest.importorskip("jupytext", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")
pytest.importorskip("nbclient", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")
pytest.importorskip("ipykernel", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")

from minidl import notebooks  # noqa: E402


def test_every_tutorial_converts_with_its_math(tmp_path):
    paths = notebooks.write(tmp_path)
    assert [p.stem for p in paths] == [s.stem for s in notebooks.tutorials()]
    import nbformat

    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        kinds = {cell.cell_type for cell in notebook.cells}
        assert kinds == {"markdown", "code"}, path.name
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# Tutorial")
        assert any("$" in cell.source for cell in notebook.cells if cell.cell_type == "markdown"), path.name


@pytest.mark.parametrize("number", ["01", "04"])
def test_a_tutorial_runs_as_a_notebook_in_quick_mode(tmp_path, number):
    (path,) = notebooks.write(tmp_path, [number])
    executed = notebooks.execute(path, quick=True)
    text = "".join(
        output.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    images = [o for cell in executed.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert "QUICK MODE" in text and "headline:" in text
    assert images, "the figures should show inline, under their cells"
    assert list((tmp_path / "outputs").glob("*.png")), "save() writes the figures next to the notebook"


def test_an_unknown_tutorial_number_is_an_error():
    with pytest.raises(ValueError, match="no tutorial"):
        notebooks.tutorials(["99"])
