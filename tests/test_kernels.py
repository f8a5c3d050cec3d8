"""kernels/: the built notebooks as a Kaggle competitor reads them in Kaggle's viewer.

Settings first (plain values, the recipe's), stages as markdown headings (a cell's jupytext
title lands in metadata, which the viewer does not show), the library folded away one module
per cell (`_kg_hide-input`), short visible code, byte-identical rebuilds, and the two-GPU
torchrun script still made from the library cells.
"""

from __future__ import annotations

import ast
import re
import sys
import types

import pytest
from workbench_support import build_into, read_nb, tree_bytes

from lib.config import Config
from lib.distributed import library_script
from lib.inlined import LIB_CELL_HEADER_RE

STAGES = {
    "train": [
        "Settings",
        "Inputs",
        "Data and folds",
        "The plan",
        "Stage 1 — pre-training",
        "Stage 2 — fine-tuning",
        "Results",
        "Export",
    ],
    "infer": ["Settings", "Install onnxruntime", "Inference", "Summary"],
}
VISIBLE_LINES = {"train": 250, "infer": 60}  # the budgets for code a reader sees
CELL_LINES = 60


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    folders = build_into(tmp, owner="someone")
    return {name: read_nb(folders[name] / f"{name}.ipynb") for name in STAGES}


def is_hidden(cell) -> bool:
    return bool(cell.metadata.get("_kg_hide-input"))


def visible_code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and not is_hidden(c)]


def settings_values(cell) -> dict:
    """The `SETTINGS = dict(...)` keywords of a cell, as Python values."""
    tree = ast.parse(cell.source)
    call = next(
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "SETTINGS"
    )
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


@pytest.mark.parametrize("name", list(STAGES))
def test_the_first_code_cell_is_the_settings_with_the_recipes_values(notebooks, name):
    nb = notebooks[name]
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert [c.cell_type for c in nb.cells[:first_code]] == ["markdown"]  # title + description
    cell = nb.cells[first_code]
    assert not is_hidden(cell) and cell.source.startswith("SETTINGS = dict(")
    values = settings_values(cell)
    defaults = Config().to_dict()
    assert values and set(values) <= set(defaults)  # every setting is a Config field
    for key, value in values.items():  # the recipe's values are Config's defaults
        expected = defaults[key]
        assert value == (list(expected) if isinstance(expected, tuple) else expected), key
    commented = [ln for ln in cell.source.splitlines() if re.match(r"\s+\w+=", ln)]
    assert sum("#" in ln for ln in commented) >= len(commented) - 2  # a comment on (nearly) each


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_is_a_visible_markdown_heading_in_order(notebooks, name):
    nb = notebooks[name]
    headings = [
        m.group(1).strip()
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^## (.+)$", c.source, re.M)
    ]
    assert headings == STAGES[name]
    assert not [c for c in nb.cells if c.metadata.get("title")]  # invisible titles: none left


@pytest.mark.parametrize("name", list(STAGES))
def test_the_library_is_folded_away_and_the_visible_code_is_short(notebooks, name):
    nb = notebooks[name]
    library = [c for c in nb.cells if c.cell_type == "code" and LIB_CELL_HEADER_RE.search(c.source)]
    hidden = [c for c in nb.cells if is_hidden(c)]
    assert library and all(is_hidden(c) for c in library)
    assert hidden == library  # nothing but library code is hidden
    for cell in library:  # one module per cell, headed by its name and its purpose
        assert len(LIB_CELL_HEADER_RE.findall(cell.source)) == 1
        assert LIB_CELL_HEADER_RE.match(cell.source)
        assert cell.source.splitlines()[1].startswith("# ")
    lengths = [len(c.source.splitlines()) for c in visible_code(nb)]
    assert max(lengths) <= CELL_LINES
    assert sum(lengths) <= VISIBLE_LINES[name]


def test_rebuilds_of_the_real_kernels_are_byte_identical(tmp_path):
    build_into(tmp_path, "a", owner="someone")
    build_into(tmp_path, "b", owner="someone")
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert first == second and "train/train.ipynb" in first


def test_the_torchrun_script_is_made_from_the_library_cells(notebooks, monkeypatch):
    """As in Jupyter: the library cells run one by one in `__main__`, IPython's input history
    (`_ih`) holds their text; the script for two GPUs is every library cell run so far."""
    nb = notebooks["train"]
    history: list[str] = [""]
    namespace = {"__name__": "__main__", "_ih": history}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_hidden(cell):
            history.append(cell.source)
            exec(compile(cell.source, f"<cell {index}>", "exec"), namespace)
        if "ddp_main" in namespace:
            break
    script = library_script(namespace["ddp_main"], "ddp_main()")
    modules = LIB_CELL_HEADER_RE.findall(script)
    assert len(modules) == len(history) - 1 and modules[0] in history[1]  # from the first cell
    assert any("lib/config.py" in module for module in modules)
    assert "from lib" not in script and "import lib" not in script
    assert len(re.findall(r"^from __future__ ", script, re.M)) == 1
    module = types.ModuleType("train_ddp_script")  # the script's library runs on its own
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(script, "train_ddp.py", "exec"), module.__dict__)
    assert callable(module.ddp_main) and callable(module.launch_ddp)
