"""Recording durations from the file headers, read once per run and kept in the run's folder.

Training draws a random 5-s crop of each recording every epoch; it needs each file's length, not
its samples. Reading 150k headers takes minutes over Kaggle's input mount, so the table is saved
as CSV in the run folder and a resumed session only reads the headers of files it has not seen
(a file is recognised by path + size + modification time, so a replaced file is read again).
A file that cannot be used (0 bytes, not audio, unreadable or truncated header, no samples) gets
its reason in `error` and 0 seconds instead of stopping the pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from lib.atomic import atomic_write
from lib.audio import AudioError, audio_info

INDEX_COLUMNS = ["path", "seconds", "error"]
_STORED_COLUMNS = ["path", "size", "mtime_ns", "seconds", "error"]


def header_seconds(path: str) -> tuple[float, str]:
    """(seconds, "") for a usable file, (0.0, reason) otherwise; never raises."""
    try:
        size = os.stat(path).st_size
    except OSError as err:
        return 0.0, f"missing or unreadable ({err.strerror})"
    if size == 0:
        return 0.0, "0 bytes"
    try:
        info = audio_info(path)
    except AudioError as err:
        return 0.0, f"not audio or unreadable header ({err.__cause__ or err})"
    if info.frames <= 0:
        return 0.0, "no audio samples"
    return info.seconds, ""


def read_durations(paths: Iterable[str | Path], workers: int = 4) -> pd.DataFrame:
    """Read the headers of `paths` in `workers` threads (libsndfile releases the GIL).

    Returns DataFrame[path (str, as given), seconds (float, 0 on error), error ("" when fine)],
    in the order of `paths`.
    """
    names = [str(p) for p in paths]
    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(header_seconds, names))
    else:
        results = [header_seconds(name) for name in names]
    return pd.DataFrame(
        {
            "path": pd.Series(names, dtype=object),
            "seconds": np.array([r[0] for r in results], dtype=np.float64),
            "error": pd.Series([r[1] for r in results], dtype=object),
        }
    )


def _file_keys(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(size, mtime_ns) per path; -1 for a path that cannot be stat'ed (never matches)."""
    sizes = np.full(len(names), -1, dtype=np.int64)
    mtimes = np.full(len(names), -1, dtype=np.int64)
    for i, name in enumerate(names):
        try:
            stat = os.stat(name)
        except OSError:
            continue
        sizes[i], mtimes[i] = stat.st_size, stat.st_mtime_ns
    return sizes, mtimes


def _read_stored(index_file: Path) -> pd.DataFrame:
    """The saved table, or an empty one when there is none yet or it is unreadable."""
    empty = pd.DataFrame(
        {
            "path": pd.Series(dtype=object),
            "size": pd.Series(dtype=np.int64),
            "mtime_ns": pd.Series(dtype=np.int64),
            "seconds": pd.Series(dtype=np.float64),
            "error": pd.Series(dtype=object),
        }
    )
    if not index_file.exists():
        return empty
    try:
        stored = pd.read_csv(index_file, dtype={"path": str, "error": str}, keep_default_na=False)
    except (ValueError, OSError, pd.errors.ParserError):
        return empty  # a damaged index costs one header pass, never the run
    if list(stored.columns) != _STORED_COLUMNS:
        return empty
    return stored


def load_or_build_index(
    paths: Iterable[str | Path], index_file: str | Path, workers: int = 4
) -> pd.DataFrame:
    """Durations of `paths`, reading only the headers that `index_file` does not already hold.

    A row is reused when its path, size and modification time all match; others are read
    (`read_durations`) and the file is rewritten atomically, keeping rows of other paths so
    sources indexed separately share one file. Returns DataFrame[path, seconds, error] in the
    order of `paths`.
    """
    index_file = Path(index_file)
    names = [str(p) for p in paths]
    sizes, mtimes = _file_keys(names)
    current = pd.DataFrame({"path": names, "size": sizes, "mtime_ns": mtimes})
    stored = _read_stored(index_file)
    merged = current.merge(
        stored.drop_duplicates("path", keep="last"),
        on=["path", "size", "mtime_ns"],
        how="left",
    )
    stale = merged["seconds"].isna().to_numpy()
    if stale.any():
        fresh = read_durations([names[i] for i in np.flatnonzero(stale)], workers=workers)
        merged.loc[stale, "seconds"] = fresh["seconds"].to_numpy()
        merged.loc[stale, "error"] = fresh["error"].to_numpy()
        kept = stored[~stored["path"].isin(set(names))]
        table = pd.concat([kept, merged[_STORED_COLUMNS]], ignore_index=True)
        atomic_write(index_file, lambda tmp: table.to_csv(tmp, index=False))
    merged["seconds"] = merged["seconds"].astype(np.float64)
    merged["error"] = merged["error"].fillna("").astype(object)
    return merged[INDEX_COLUMNS].reset_index(drop=True)


# --- what the loader learns about files that their headers do not say ---------------------------

FINDING_COLUMNS = ("path", "size", "mtime_ns", "finding", "value")
DECODED_SECONDS = "decoded_seconds"  # a cut file: the length that really decodes
SILENT = "silent"  # 1.0: the whole recording is below config.silent_peak; 0.0: it is not


class LoaderFindings:
    """Facts about files learned while training, kept beside durations.csv so that every loader
    worker, every later fold and a resumed session know them without decoding again.

    Rows (path, size, mtime_ns, finding, value) are appended by whichever process learns one
    (one O_APPEND write per row, safe across workers and DDP ranks); `read` keeps the last row
    per (path, finding) whose size and modification time still match the file, so a replaced
    recording is judged again.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, path: str, finding: str, value: float) -> None:
        try:
            stat = os.stat(path)
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            return  # a file gone since: nothing worth keeping
        header = "" if self.path.is_file() else ",".join(FINDING_COLUMNS) + "\n"
        row = pd.DataFrame([[path, size, mtime, finding, float(value)]]).to_csv(
            index=False, header=False
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (header + row).encode())
        finally:
            os.close(fd)

    def read(self) -> dict[tuple[str, str], float]:
        """{(path, finding): value} of the rows that still describe their file."""
        if not self.path.is_file():
            return {}
        try:
            rows = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except (ValueError, OSError, pd.errors.ParserError):
            return {}  # a damaged list costs a few probes again, never the run
        if list(rows.columns) != list(FINDING_COLUMNS):
            return {}
        numbers = rows[["size", "mtime_ns", "value"]].apply(pd.to_numeric, errors="coerce")
        rows = rows[numbers.notna().all(axis=1)]  # drops a header written twice by a race
        rows = rows.astype({"size": np.int64, "mtime_ns": np.int64, "value": np.float64})
        rows = rows.drop_duplicates(["path", "finding"], keep="last")
        sizes, mtimes = _file_keys(rows["path"].tolist())
        same = (rows["size"].to_numpy() == sizes) & (rows["mtime_ns"].to_numpy() == mtimes)
        kept = rows[same]
        return {
            (str(p), str(f)): float(v)
            for p, f, v in zip(kept["path"], kept["finding"], kept["value"], strict=True)
        }
