"""lib.inlined: the header the builder writes above an inlined module is the one
lib.distributed finds."""

from __future__ import annotations

from lib.inlined import LIB_CELL_HEADER_RE, lib_cell_header


def test_header_round_trip():
    header = lib_cell_header("lib", "x")
    assert LIB_CELL_HEADER_RE.fullmatch(header)
    cell = f"import os\n{lib_cell_header('lib', 'train_folds')}\ndef f():\n    pass\n"
    assert LIB_CELL_HEADER_RE.search(cell)


def test_other_lines_are_not_headers():
    for line in (
        "# ---- lib/x.py ----",
        "x = 1  # ---- lib/x.py (inlined by build_kernels.py) ----",
    ):
        assert not LIB_CELL_HEADER_RE.search(line), line
