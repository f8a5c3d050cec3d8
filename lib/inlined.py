"""The header line the builder writes above each library module it inlines into a notebook.

A contract between the builder (which writes it, one cell per module, folded away by the
metadata below) and `lib.distributed` (which finds the inlined library cells by it to launch
`torchrun` from a notebook): defined here, imported by both.
"""

from __future__ import annotations

import re

LIB_CELL_HEADER = "# ---- {package}/{module}.py (inlined by build_kernels.py) ----"
LIB_CELL_HEADER_RE = re.compile(r"^# ---- \w+/\w+\.py \(inlined by build_kernels\.py\) ----$", re.M)


# A library cell's metadata: Kaggle's viewer folds the code away ("show hidden code" opens it);
# JupyterLab and nbconvert read `jupyter.source_hidden`.
HIDDEN_CELL_METADATA = {"_kg_hide-input": True, "jupyter": {"source_hidden": True}}


def lib_cell_header(package: str, module: str) -> str:
    """The header above `package/module.py` inlined into a cell."""
    return LIB_CELL_HEADER.format(package=package, module=module)
