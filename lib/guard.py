"""The inference notebook's deadline policy: a timeout on Kaggle scores nothing.

`DeadlineGuard` projects the finish from measured costs and picks how many fold models the next
file may use (all, fewer, or none = fallback rows) so the run ends inside the budget;
`budget_started_at` says when the budget began (the kernel's start, as Kaggle counts).

Moved out (issue 8): never-raising decoding, `window_ends`, `expected_ends` and
`silent_windows` live in lib.audio; `available_cores` and `plan_workers` in lib.infer_workers.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib.audio import EXPECTED_SOUNDSCAPE_SECONDS


@dataclass
class DeadlineGuard:
    """Chooses the fold count per file from a cost model fitted as results come in.

    Cost of one file on one worker: windows * (per_window + per_fold_window * folds) seconds,
    both rates measured inside the workers (they include CPU contention). With `workers` running
    in parallel, the projected finish is now + (in-flight cost + queued cost) / workers.
    """

    budget_s: float
    n_folds: int
    workers: int = 1
    window_s: float = 0.0  # measured seconds of decode + features
    fold_s: float = 0.0  # measured seconds of model runs
    windows: int = 0
    fold_windows: int = 0
    files: int = 0
    decisions: dict[int, int] = field(default_factory=dict)  # folds -> files submitted so
    # The competition's test file length (Config.test_file_seconds): the windows per file
    # assumed before the first file is measured (600 s: 120; a 1-minute year: 12).
    expected_seconds: float = EXPECTED_SOUNDSCAPE_SECONDS

    def observe(self, windows: int, folds: int, window_s: float, fold_s: float) -> None:
        """Add a finished file's measured costs (files without model runs teach nothing)."""
        if windows <= 0 or folds <= 0:
            return
        self.files += 1
        self.windows += windows
        self.fold_windows += windows * folds
        self.window_s += window_s
        self.fold_s += fold_s

    def mean_windows(self) -> float:
        return self.windows / self.files if self.files else self.expected_seconds / 5

    def file_cost(self, folds: int, windows: float | None = None) -> float:
        """Projected seconds of one worker for a file (0 before anything was measured)."""
        if not self.files:
            return 0.0
        windows = self.mean_windows() if windows is None else windows
        per_window = self.window_s / self.windows
        per_fold_window = self.fold_s / self.fold_windows
        return windows * (per_window + per_fold_window * folds)

    def choose_folds(self, elapsed_s: float, queued_files: int, inflight_cost: float) -> int:
        """Folds for the next file: the most whose projected finish for ALL queued files fits
        the budget; else 1 while this one file still fits (each file done beats more folds on
        fewer files); else 0 (fallback rows from here on)."""
        if elapsed_s >= self.budget_s:
            return self._decide(0)
        for folds in range(self.n_folds, 0, -1):
            queued = queued_files * self.file_cost(folds)
            if elapsed_s + (inflight_cost + queued) / self.workers <= self.budget_s:
                return self._decide(folds)
        fits_one = elapsed_s + (inflight_cost + self.file_cost(1)) / self.workers
        return self._decide(1 if fits_one <= self.budget_s else 0)

    def _decide(self, folds: int) -> int:
        self.decisions[folds] = self.decisions.get(folds, 0) + 1
        return folds


def process_started_at() -> float:
    """Wall-clock start of this process (the notebook kernel); now where /proc is unavailable."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def budget_started_at(max_age_s: float = 600.0) -> float:
    """When the time budget began: the kernel's start, as Kaggle counts it (imports and the
    install cell included). A kernel older than `max_age_s` is an interactive session left
    open, not a scoring run: then now, or the guard would see the budget spent already."""
    started, now = process_started_at(), time.time()
    return started if 0.0 <= now - started <= max_age_s else now
