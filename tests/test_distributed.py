"""lib.distributed: the single-process answers, torchrun's command, streaming a child's output,
and the script `library_script` writes from the repository and from a notebook's cells.

The 2-process gloo run of the training itself is in tests/test_train_folds.py.
"""

from __future__ import annotations

import linecache
import re
import sys
from pathlib import Path

import pytest
import torch

import lib.train_folds as train_module
from lib.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    dist_info,
    gather_objects,
    library_cells,
    library_script,
    run_streaming,
    sum_across,
    torchrun_command,
)
from lib.inlined import lib_cell_header
from lib.train_folds import ddp_main


def notebook_namespace() -> dict:
    """The library as a notebook built by build_kernels.py holds it: one inlined cell, executed
    in `__main__`, its text in linecache under a cell file name (as IPython does)."""
    import build_kernels

    lib_dir = Path(train_module.__file__).resolve().parent
    cell = build_kernels.inline_cell(
        "from lib.train_folds import launch_ddp\n", lib_dir, [], {}, "test cell"
    )
    filename = "/tmp/ipykernel_0/test_train_cell.py"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(keepends=True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(cell, filename, "exec"), namespace)
    return namespace


def test_one_process_degrades_to_the_single_answer():
    info = dist_info()
    assert info == DistInfo() and info.is_main and not info.enabled
    barrier(info)  # no process group: a no-op, not an error
    assert broadcast_object({"a": 1}, info) == {"a": 1}
    assert gather_objects(3, info) == [3]
    assert sum_across([1.5, 2.0], info, torch.device("cpu")) == [1.5, 2.0]


def test_torchrun_command_uses_this_interpreter():
    command = torchrun_command("train_ddp.py", [Path("job.json")], 2)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in command and command[-2:] == ["train_ddp.py", "job.json"]


def test_run_streaming_forwards_output_and_names_a_failure(capfd):
    out = run_streaming([sys.executable, "-c", "print('hello'); print('world')"])
    assert out.splitlines() == ["hello", "world"]
    assert "hello" in capfd.readouterr().out
    failing = [sys.executable, "-c", "print('last words'); raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match=r"exit 3[\s\S]*last words"):
        run_streaming(failing)


def test_library_script_from_the_repository_imports_lib():
    script = library_script(ddp_main, "ddp_main()")
    compile(script, "train_ddp.py", "exec")
    assert "from lib.train_folds import ddp_main" in script
    assert str(Path(train_module.__file__).resolve().parents[1]) in script


def test_library_script_from_a_notebook_is_its_inlined_cells():
    """Found by lib.inlined's header: the builder writes it, library_cells reads it back."""
    namespace = notebook_namespace()
    cells = library_cells(namespace)
    assert len(cells) == 1 and lib_cell_header("lib", "train_folds") in cells[0]
    script = library_script(namespace["ddp_main"], "ddp_main()")
    compile(script, "train_ddp.py", "exec")
    assert "from lib" not in script and "import lib" not in script
    assert len(re.findall(r"^from __future__ ", script, re.M)) == 1  # hoisted to the top


def test_library_script_refuses_a_namespace_without_inlined_cells():
    def entry():  # defined here, not in an inlined cell: IPython keeps no such text
        pass

    entry.__module__ = "__main__"
    with pytest.raises(RuntimeError, match="no inlined library cell"):
        library_script(entry, "entry()")
