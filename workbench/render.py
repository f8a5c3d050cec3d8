"""Executed notebooks as a reader sees them: HTML with the folded code hidden, and a picture.

Kaggle's viewer folds a cell whose metadata has `_kg_hide-input`; nbconvert knows only tags, so
those cells get the `remove_input` tag on a copy before the HTML export (their outputs stay).
The picture is headless Chromium's screenshot of that HTML (for the README).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import nbformat

from workbench.errors import BuildError

HIDE_TAG = "remove_input"
DROP_TAG = "remove_cell"  # a folded cell without output: nothing to show, not even its margin


def with_hidden_input_tagged(nb):
    """A copy of `nb` whose `_kg_hide-input` cells carry nbconvert's `remove_input` tag (or
    `remove_cell` when they have no output)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.metadata.get("_kg_hide-input"):
            tag = HIDE_TAG if cell.get("outputs") else DROP_TAG
            tags = list(cell.metadata.get("tags", []))
            cell.metadata["tags"] = [*tags, tag] if tag not in tags else tags
    return nb


def notebook_html(nb) -> str:
    """The notebook as nbconvert's HTML (lab template), folded code left out."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config as TraitletsConfig

    settings = TraitletsConfig()
    settings.TagRemovePreprocessor.enabled = True
    settings.TagRemovePreprocessor.remove_input_tags = {HIDE_TAG}
    settings.TagRemovePreprocessor.remove_cell_tags = {DROP_TAG}
    exporter = HTMLExporter(config=settings)
    body, _ = exporter.from_notebook_node(with_hidden_input_tagged(nb))
    return body


def render_html(notebook: Path, html: Path) -> Path:
    """Write `notebook` (an executed .ipynb) as `html`; return the path."""
    nb = nbformat.read(notebook, as_version=4)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(notebook_html(nb), encoding="utf-8")
    return html


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


def screenshot(html: Path, png: Path, width: int = 1100, height: int = 1400) -> Path:
    """Headless Chromium's picture of the top `height` pixels of `html`."""
    browser = chromium()
    if browser is None:
        raise BuildError("no chromium on PATH. Fix: apt-get install chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={width},{height}", f"--screenshot={png.resolve()}",
        html.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.is_file():
        raise BuildError(f"chromium screenshot of {html} failed: {done.stderr[-500:]}")
    return png
