"""Write a file so that a reader never sees half of it: write a temporary sibling, then rename.

The one home of this rule, used by every file a crash must not leave half-written: checkpoints,
cache entries, ONNX files, the submission and run files (JSON, CSV, PNG). `os.replace` is atomic
on one file system, so a killed process leaves either the old file or the new one, plus at most
a `*.tmp-*` sibling.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


class AtomicTarget:
    """A temporary sibling of `path` (`tmp`) that `commit` renames onto `path`.

    As a context manager it commits when the block succeeds and discards on an exception;
    streaming writers (the submission) keep one open and call `commit` / `discard` themselves.
    The temporary name keeps the suffix (`x.tmp-123-1a2b.onnx`): writers pick the format from it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tag = f"tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp = self.path.with_name(f"{self.path.stem}.{tag}{self.path.suffix}")

    def commit(self) -> Path:
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicTarget:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary sibling of `path`, then rename it onto `path`."""
    with AtomicTarget(path) as target:
        write(target.tmp)
