"""workbench/inline.py: lib modules inlined into notebook cells, and what the inliner refuses."""

from __future__ import annotations

import ast

import jupytext
import nbformat
import pytest
from workbench_support import FIXTURE_LIB, REPO, build_demo, read_nb, write

from workbench.errors import BuildError
from workbench.inline import build_notebook, inline_library, lib_imports_left


def test_fixture_notebook_is_self_contained(tmp_path):
    nb = read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb")
    nbformat.validate(nb)
    assert lib_imports_left(nb) == []
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    headers = [
        f"# ---- lib/{m}.py (inlined by build_kernels.py) ----" for m in ("base", "mid", "top")
    ]
    positions = [code.index(h) for h in headers]
    assert positions == sorted(positions)  # dependencies first
    assert all(code.count(h) == 1 for h in headers)  # once per notebook, though imported twice
    assert "base main block" not in code and "if __name__" not in code
    assert "## %% an indented cell marker" in code and "## In[7]:" in code
    assert "length = norm" in code  # aliased import inside the library
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_library_modules_are_folded_cells_before_their_first_user(tmp_path):
    """One hidden cell per module, headed by its name and purpose, in dependency order, after
    a note saying what they are; the importing cell keeps only its own code, visible."""
    nb = read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb")
    kinds = [(c.cell_type, bool(c.metadata.get("_kg_hide-input"))) for c in nb.cells]
    assert kinds[:6] == [
        ("markdown", False),  # the kernel's title
        ("markdown", False),  # the note about the folded library
        *[("code", True)] * 3,  # base, mid, top
        ("code", False),  # the kernel's own cell
    ]
    note = nb.cells[1].source
    assert "folded away (3 modules" in note and "`lib/base.py`, `lib/mid.py`, `lib/top.py`" in note
    library = [c for c in nb.cells if c.metadata.get("_kg_hide-input")]
    for cell, name in zip(library, ("base", "mid", "top"), strict=True):
        lines = cell.source.splitlines()
        assert lines[0] == f"# ---- lib/{name}.py (inlined by build_kernels.py) ----"
        assert lines[1].startswith("# ") and len(lines[1]) > 5  # the docstring's first line
        assert cell.metadata["jupyter"] == {"source_hidden": True}
        compile(cell.source, name, "exec")  # each cell runs on its own (its future line first)
    assert nb.cells[5].source.startswith("import os")  # the kernel's code, its lib import gone
    # the second lib-importing cell needs no new module: no note, no library cell before it
    assert [c.cell_type for c in nb.cells[6:]] == ["code", "code"]
    assert all(not c.metadata.get("_kg_hide-input") for c in nb.cells[5:])


def test_notebook_survives_jupytext_roundtrip(tmp_path):
    """Neutralised markers: converting the notebook to py:percent and back keeps its cells."""
    nb = read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb")
    back = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    assert [c.source for c in back.cells] == [c.source for c in nb.cells]


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("def f():\n    from lib.base import x\n", "not at the top level"),
        ("from lib import base\n", "unsupported lib import"),
        ("import lib.base\n", "unsupported lib import"),
        ("from lib.base import *\n", "unsupported lib import"),
        ("from .base import x\n", "unsupported lib import"),
        ("from lib.missing import x\n", "no such library module"),
        ("from lib.bad import x\n", "import cycle"),
        ("from pathlib import Path\n\nROOT = Path(__file__)\n", "__file__"),
        ('TEXT = """\n# %%\n"""\n', "inside a string"),
        ("from lib.base import x\n\n\ndef x():\n    pass\n", "also defined, differently"),
        ("from workbench.synthetic import SyntheticSpec\n\nx = 1\n", "imports workbench"),
    ],
)
def test_library_problems_fail_loudly(tmp_path, module, message):
    lib = tmp_path / "lib"
    write(lib / "base.py", "x = 1\n")
    write(lib / "bad.py", "from lib.bad2 import y\n")
    write(lib / "bad2.py", "from lib.bad import x\n\ny = 2\n")
    write(lib / "mod.py", module)
    source = write(tmp_path / "kernels" / "k.py", "# %%\nfrom lib.mod import x\n")
    with pytest.raises(BuildError, match=message) as err:
        build_notebook(source, lib)
    assert str(lib) in str(err.value) or "cycle" in message


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("if True:\n    from lib.base import x\n", "not at the top level"),
        ("import lib\n", "unsupported lib import"),
        ("x = 1; from lib.base import x\n", "own line"),
        ("%%time\nfrom lib.base import x\n", "cell magics"),
    ],
)
def test_kernel_cell_problems_fail_loudly(tmp_path, cell, message):
    write(tmp_path / "lib" / "base.py", "x = 1\n")
    source = write(tmp_path / "kernels" / "k.py", "# %%\n" + cell)
    with pytest.raises(BuildError, match=message) as err:
        build_notebook(source, tmp_path / "lib")
    assert str(source) in str(err.value)


@pytest.mark.parametrize(
    ("statement", "line"),
    [
        ("import workbench", 5),
        ("from workbench.synthetic import make_competition", 5),
        ("import os, workbench.inline as wi", 5),
        ("def f():\n    from workbench import rehearsal", 6),
    ],
)
def test_kernel_importing_workbench_is_refused(tmp_path, statement, line):
    """A notebook on Kaggle cannot import the user's-machine package: the build says where
    (source file and line) and what to do instead."""
    write(tmp_path / "lib" / "base.py", "x = 1\n")
    text = f"# %%\nfrom lib.base import x\n\n# %% second cell\n{statement}\n"
    source = write(tmp_path / "kernels" / "k.py", text)
    with pytest.raises(BuildError, match="imports workbench") as err:
        build_notebook(source, tmp_path / "lib")
    assert f"{source}:{line}:" in str(err.value)
    assert "Fix: import what the notebook needs from lib/" in str(err.value)


def test_workbench_in_text_is_not_an_import(tmp_path):
    source = write(
        tmp_path / "k.py", '# %%\n"""Built by workbench, which the notebook never imports."""\n'
    )
    nb = build_notebook(source, tmp_path / "lib")
    assert "workbench" in nb.cells[0].source


def test_identical_definitions_in_two_modules_are_allowed(tmp_path):
    write(tmp_path / "lib" / "a.py", "import numpy as np\n\nRATE = 32000\n")
    write(tmp_path / "lib" / "b.py", "import numpy as np\n\nRATE = 32000\n")
    source = write(tmp_path / "k.py", "# %%\nfrom lib.a import RATE\nfrom lib.b import np\n")
    nb = build_notebook(source, tmp_path / "lib")
    assert lib_imports_left(nb) == []


def test_lib_imports_left_finds_survivors():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('"""from lib.x import y is fine in a docstring"""'),
        nbformat.v4.new_code_cell("import os\nimport lib.config"),
        nbformat.v4.new_code_cell("def f():\n    from lib.audio import load_audio"),
        nbformat.v4.new_code_cell("%%capture\nfrom lib.config import Config"),
    ]
    left = lib_imports_left(nb)
    assert len(left) == 3 and left[0].startswith("cell 1") and left[2].startswith("cell 3")


def test_inline_library_is_what_a_notebook_holds():
    """The helper tests use to run library code as a notebook does: dependencies first, each
    module once, no lib import left, and the code runs in a fresh namespace."""
    cell = inline_library(FIXTURE_LIB, ["top"])
    headers = [f"# ---- lib/{m}.py (inlined by build_kernels.py) ----" for m in ("base", "mid")]
    assert cell.index(headers[0]) < cell.index(headers[1]) < cell.index("lib/top.py")
    assert cell.startswith("from __future__ import annotations\n")
    tree = ast.parse(cell)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "lib"]


def test_all_library_modules_inline_together(tmp_path):
    """Every lib module in one notebook: no name clash, no __file__, no unsupported import."""
    names = []
    for path in sorted((REPO / "lib").glob("*.py")):
        tree = ast.parse(path.read_text())
        public = [
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")
        ]
        if public:
            names.append(f"from lib.{path.stem} import {public[0]}")
    kernel = write(tmp_path / "all.py", "# %%\n" + "\n".join(names) + "\n")
    nb = build_notebook(kernel, REPO / "lib")
    assert lib_imports_left(nb) == []
    assert len(names) >= 3
