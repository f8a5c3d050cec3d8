"""workbench/render.py: executed notebooks as HTML with the folded library code left out."""

from __future__ import annotations

import re
from html import unescape

import nbformat
import pytest
from workbench_support import build_demo, read_nb

from workbench.render import chromium, notebook_html, render_html, screenshot


def with_output(nb):
    """The demo notebook as if executed: an output on every code cell."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text=f"output of cell {index}\n")]
    return nb


def test_folded_cells_lose_their_code_but_keep_their_outputs(tmp_path):
    nb = with_output(read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb"))
    html = notebook_html(nb)
    folded = [i for i, c in enumerate(nb.cells) if c.metadata.get("_kg_hide-input")]
    shown = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in folded]
    assert folded and shown
    assert "inlined by build_kernels.py" not in html  # no library header: its code is gone
    assert "Fixture library module" not in html
    text = unescape(re.sub(r"<[^>]+>", "", html))  # what the page shows
    assert "print(summary(2.0))" in text  # the kernel's own code is shown
    for index in folded + shown:  # every output stays, folded or not
        assert f"output of cell {index}" in html
    assert "Demo kernel" in html  # markdown rendered
    assert len(re.findall(r"<div[^>]* class=\"jp-Cell jp-CodeCell", html)) == len(
        [c for c in nb.cells if c.cell_type == "code"]
    )
    assert not nb.cells[folded[0]].metadata.get("tags")  # the caller's notebook is unchanged


def test_render_html_writes_the_file(tmp_path):
    built = build_demo(tmp_path) / "demo" / "demo.ipynb"
    out = render_html(built, tmp_path / "html" / "demo.html")
    assert out.read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.skipif(chromium() is None, reason="no chromium on PATH (apt-get install chromium)")
def test_screenshot_is_a_png_of_the_requested_size(tmp_path):
    html = render_html(build_demo(tmp_path) / "demo" / "demo.ipynb", tmp_path / "demo.html")
    png = screenshot(html, tmp_path / "demo.png", width=640, height=480)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (640, 480)


def test_a_folded_cell_without_output_leaves_nothing_behind(tmp_path):
    nb = with_output(read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb"))
    folded = [c for c in nb.cells if c.metadata.get("_kg_hide-input")]
    code_cells = len([c for c in nb.cells if c.cell_type == "code"])
    folded[0].outputs = []
    html = notebook_html(nb)
    assert len(re.findall(r"<div[^>]* class=\"jp-Cell jp-CodeCell", html)) == code_cells - 1
