"""Multi-GPU plumbing: torchrun's environment, the few collectives training needs, and a way
for a notebook to launch `torchrun` on its own (inlined) library code.

One code path: without torchrun every helper degrades to the single-process answer (rank 0 of
1, no-op barrier, gather of one), so `lib.train_folds` never branches on "distributed or not".

Why torchrun and not fork/spawn from the notebook: spawn cannot import functions defined in
notebook cells (they live in `__main__`), and fork is unsafe once CUDA was touched in the
parent (a notebook cell may have done so). torchrun starts clean processes that run a script;
`library_script` writes that script. Run from the repository, the script imports `lib`; run
from a notebook built by build_kernels.py, the library exists only as cell text, which IPython
keeps in `linecache` under each cell's code file name: the script is those cells, flattened.
"""

from __future__ import annotations

import codecs
import inspect
import linecache
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from lib.inlined import LIB_CELL_HEADER_RE

# Set in the processes torchrun starts for us, so a worker never launches torchrun itself.
DDP_CHILD_ENV = "BIRDCLEF_DDP_CHILD"
_FUTURE_LINE = re.compile(r"^from __future__ import [^\n]*\n?", re.M)
_JUPYTEXT_MARKER = re.compile(r"^# %%", re.M)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank among world_size, and its GPU index on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and draws progress bars."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """This process's place in the initialised process group (rank 0 of 1 if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    Without torchrun's variables: single process, nothing initialised. Backend: NCCL on GPUs,
    gloo on CPU (the CI test) unless given.
    """
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return DistInfo()
    if dist.is_initialized():
        return dist_info()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # before NCCL picks a device
    dist.init_process_group(backend=backend)
    return dist_info()


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(info: DistInfo, device: str | torch.device | None = None) -> torch.device:
    """The given device, else this rank's GPU, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(value, info: DistInfo, src: int = 0):
    """`value` from rank `src` on every rank (a picklable object)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(value, info: DistInfo) -> list:
    """Every rank's `value`, in rank order, on every rank."""
    if not info.enabled:
        return [value]
    out = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def sum_across(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise sum of small float lists over ranks (e.g. a loss sum and a count)."""
    if not info.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank.

    DDP syncs buffers at the start of each forward, then every rank updates its own copy: after
    the last step they differ slightly. Validation must use rank 0's (the ones saved).
    """
    if not info.enabled:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


# --- launching torchrun from the notebook ----------------------------------------------------


def torchrun_command(script: str | Path, args: list[str], nproc: int) -> list[str]:
    """`torchrun --standalone --nproc_per_node=N script args` with this very interpreter."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={int(nproc)}", str(script), *map(str, args),
    ]  # fmt: skip


def run_streaming(command: list[str], env: dict | None = None, tail_chars: int = 4000) -> str:
    """Run `command`, forwarding its output as it arrives; return the output; raise on failure.

    A notebook shows only what passes through `sys.stdout` (a child writing to file
    descriptor 1 is invisible), so the child's bytes are copied over, `\\r` progress bars kept.
    """
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    chunks: list[str] = []
    while chunk := proc.stdout.read1(65536):
        text = decoder.decode(chunk)
        chunks.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()
    proc.stdout.close()
    output = "".join(chunks) + decoder.decode(b"", final=True)
    if proc.wait() != 0:
        raise RuntimeError(
            f"command failed (exit {proc.returncode}): {' '.join(command)}\n"
            f"last output:\n{output[-tail_chars:]}"
        )
    return output


def library_script(entry: Callable, call: str) -> str:
    """Source of a script whose `__main__` runs `call` (e.g. "ddp_main()") with the library
    that defines `entry`.

    Repository (entry from `lib.<module>`): the script puts the repository on sys.path and
    imports `entry`. Notebook (entry in `__main__`): the script is every inlined library cell,
    in execution order, with one `from __future__` line hoisted to the top.
    """
    module = entry.__module__
    if module != "__main__":
        depth = len(module.split("."))
        root = Path(inspect.getsourcefile(entry)).resolve().parents[depth - 1]
        imports = f"sys.path.insert(0, {str(root)!r})\nfrom {module} import {entry.__name__}"
        return f"import sys\n\n{imports}\n\nif __name__ == '__main__':\n    {call}\n"
    cells = library_cells(entry.__globals__)
    if not cells:
        raise RuntimeError(
            "library_script: no inlined library cell found (functions in __main__ whose source "
            "IPython keeps); run the notebook built by build_kernels.py in Jupyter, or run from "
            "the repository so `lib` can be imported"
        )
    body = "\n\n".join(_FUTURE_LINE.sub("", text) for text in cells)
    header = "# Written by lib.distributed.library_script: the notebook's inlined library.\n"
    return (
        f"from __future__ import annotations\n{header}\n{body}\n\n"
        f"if __name__ == '__main__':\n    {call}\n"
    )


def library_cells(namespace: dict) -> list[str]:
    """Text of the notebook cells that hold inlined library code, in the order they ran.

    The builder writes one cell per library module (lib.inlined's header heads each). IPython
    keeps every executed cell's text in the namespace's input history (`_ih`), in run order; a
    cell run twice counts once. Without that history (a namespace made by hand), the cells are
    found through the code objects of the functions and classes defined in `namespace`, whose
    file names point at the cell text IPython caches in linecache.
    """
    history = namespace.get("_ih")
    texts = list(history) if isinstance(history, list) and history else _cell_texts(namespace)
    cells: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not LIB_CELL_HEADER_RE.search(text) or text in cells:
            continue
        if _JUPYTEXT_MARKER.search(text):
            raise RuntimeError(
                "library_script: a whole notebook exported as a script, not a cell, holds the "
                "library; run the notebook in Jupyter (or from the repository) to use several GPUs"
            )
        cells.append(text)
    return cells


def _cell_texts(namespace: dict) -> list[str]:
    """The text of each cell file that defined a function or class in `namespace`."""
    files: list[str] = []
    name = namespace.get("__name__")
    for value in list(namespace.values()):
        if getattr(value, "__module__", None) != name:
            continue
        for code in _code_objects(value):
            if code.co_filename not in files:
                files.append(code.co_filename)
    return ["".join(linecache.getlines(filename)) for filename in files]


def _code_objects(value):
    """Code objects of a function, or of the methods a class defines itself."""
    if inspect.isfunction(value):
        yield value.__code__
    elif inspect.isclass(value):
        for attr in vars(value).values():
            func = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
            if isinstance(attr, property):
                func = attr.fget
            if inspect.isfunction(func):
                yield func.__code__
