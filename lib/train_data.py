"""The header pass before training: durations of every recording, bad files set aside, and a
source that is mostly broken stopped before it wastes a session.

One pass over the file headers (lib.audio_index, kept in the run folder as durations.csv, so
a resumed session reads it back instead of 150k headers) gives each recording's duration, from
which the dataset draws its crops. A file whose header cannot be read (0 bytes, not audio,
truncated inside its header) is dropped from the table before the folds are fixed, counted and
listed in `<run>/skipped_files.csv` (path, source, reason); files that only fail later (a
broken stretch, silence) are appended to the same list by the loader (lib.dataset.SkipLog).
Training goes on either way; only a source where most of the first files fail stops the run,
because that is a wrong folder or a broken download, not a few bad recordings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio_index import load_or_build_index
from lib.config import Config
from lib.dataset import SkipLog
from lib.distributed import DistInfo, barrier, broadcast_object

DURATIONS_FILE = "durations.csv"
SKIPPED_FILE = "skipped_files.csv"


class BrokenSourceError(RuntimeError):
    """Most of a source's first files are unreadable; the message names it and the fix."""


def skip_log_for(out_dir: str | Path) -> SkipLog:
    """The run's list of skipped recordings, out_dir/skipped_files.csv."""
    return SkipLog(Path(out_dir) / SKIPPED_FILE)


def header_problems(index: pd.DataFrame) -> pd.Series:
    """Per index row: '' when usable, else why not (the index's error, or no duration)."""
    errors = index["error"].fillna("").astype(str).str.strip()
    seconds = pd.to_numeric(index["seconds"], errors="coerce")
    no_audio = ~(seconds > 0)  # NaN or <= 0
    return errors.where(errors != "", np.where(no_audio, "no audio samples in the header", ""))


def check_sources(table: pd.DataFrame, problems: pd.Series, config: Config) -> None:
    """Raise BrokenSourceError when more than config.broken_source_share of a source's first
    config.broken_source_sample recordings (table order) are unreadable."""
    sources = (
        table["source"].astype(str)
        if "source" in table.columns
        else pd.Series("table", index=table.index)
    )
    for source in sources.unique():
        first = problems[sources == source].iloc[: config.broken_source_sample]
        bad = first[first != ""]
        if len(first) and len(bad) > config.broken_source_share * len(first):
            paths = table.loc[bad.index[:3], "path"].astype(str).tolist()
            raise BrokenSourceError(
                f"source {source!r}: {len(bad)} of its first {len(first)} files cannot be read "
                f"(e.g. {paths}; first reason: {bad.iloc[0]}). Check that the {source!r} input "
                "is the right dataset, fully downloaded and attached at the expected folder, "
                "or leave the source out"
            )


def index_recordings(
    table: pd.DataFrame,
    config: Config,
    out_dir: str | Path,
    info: DistInfo,
    workers: int | None = None,
) -> pd.DataFrame:
    """`table` with a `seconds` column, less the recordings whose header cannot be read.

    Rank 0 reads (or reloads) the durations index out_dir/durations.csv and writes
    out_dir/skipped_files.csv (kept rows the loader appended in an earlier session); every rank
    gets the same table. Raises BrokenSourceError for a mostly-broken source.
    """
    out_dir = Path(out_dir)
    paths = table["path"].astype(str)
    index = None
    if info.is_main:
        workers = workers or os.cpu_count() or 2
        built = load_or_build_index(sorted(set(paths)), out_dir / DURATIONS_FILE, workers)
        index = built[["path", "seconds", "error"]].assign(path=built["path"].astype(str))
    index = broadcast_object(index, info).drop_duplicates("path").set_index("path")
    missing = sorted(set(paths) - set(index.index))
    if missing:
        raise RuntimeError(f"durations index lacks {len(missing)} recordings, e.g. {missing[0]}")
    rows = index.loc[paths.to_numpy()].reset_index()
    problems = header_problems(rows)
    problems.index = table.index
    check_sources(table, problems, config)
    bad = problems != ""
    if info.is_main:
        write_skipped(table, problems, out_dir)
        if bad.any():
            print(f"header pass: {int(bad.sum())} of {len(table)} recordings unreadable, "
                  f"skipped; listed in {out_dir / SKIPPED_FILE}")  # fmt: skip
    barrier(info)
    out = table.assign(seconds=rows["seconds"].to_numpy(dtype=np.float64))
    return out[~bad.to_numpy()].reset_index(drop=True)


def write_skipped(table: pd.DataFrame, problems: pd.Series, out_dir: Path) -> None:
    """The header pass's skipped rows, plus the loader's from earlier sessions, in one list."""
    log = skip_log_for(out_dir)
    bad = problems != ""
    sources = table["source"].astype(str) if "source" in table.columns else ""
    header = pd.DataFrame(
        {"path": table["path"].astype(str), "source": sources, "reason": problems}
    )[bad.to_numpy()]
    earlier = log.read()
    merged = pd.concat([header, earlier], ignore_index=True).drop_duplicates("path")
    log.write(merged)
