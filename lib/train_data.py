"""The header pass before training: durations of every recording, bad files set aside, and a
source that is mostly broken stopped before it wastes a session.

One pass over the file headers (lib.audio_index, kept in the run folder as durations.csv, so
a resumed session reads it back instead of 150k headers) gives each recording's duration, from
which the dataset draws its crops. A file whose header cannot be read (0 bytes, not audio,
truncated inside its header) is dropped from the table before the folds are fixed, counted and
listed in `<run>/skipped_files.csv` (path, source, reason); files that only fail later (a
broken stretch, silence) are appended to the same list by the loader (lib.dataset.SkipLog).

A header can lie (an interrupted download keeps a header that promises the whole recording), so
the first config.broken_source_sample files of each attached folder also have their last clip
decoded: a file that cannot be decoded there is dropped and listed like a header failure; a file
whose audio ends early is kept with its real length noted for the loader (loader_findings.csv).
Training goes on either way; only an attached folder (a source's dataset: Xeno-canto's A-M and
N-Z halves are judged apart) where most of the first files fail stops the run, because that is a
wrong folder or a broken download, not a few bad recordings.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import AudioError, load_crop
from lib.audio_index import DECODED_SECONDS, LoaderFindings, load_or_build_index
from lib.config import Config
from lib.dataset import SkipLog
from lib.distributed import DistInfo, barrier, broadcast_object

DURATIONS_FILE = "durations.csv"
SKIPPED_FILE = "skipped_files.csv"
FINDINGS_FILE = "loader_findings.csv"  # beside durations.csv: what the headers did not say
UNDECODABLE = "cannot decode its last clip"


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


def findings_for(out_dir: str | Path) -> LoaderFindings:
    """What the loader learned about the run's files, out_dir/loader_findings.csv."""
    return LoaderFindings(Path(out_dir) / FINDINGS_FILE)


def source_folders(table: pd.DataFrame) -> pd.Series:
    """Per row, the attached folder it is judged with: 'source (root)' when the table has a
    `root` column (lib.sources), else the source's name."""
    if "source" in table.columns:
        sources = table["source"].astype(str)
    else:
        sources = pd.Series("table", index=table.index)
    if "root" not in table.columns:
        return sources
    roots = table["root"].fillna("").astype(str)
    return sources.where(roots == "", sources + " at " + roots)


def first_rows(table: pd.DataFrame, config: Config) -> pd.Series:
    """Per row: whether it is among the first config.broken_source_sample rows (table order)
    of its folder, the rows a folder is judged on."""
    position = source_folders(table).groupby(source_folders(table)).cumcount()
    return position < config.broken_source_sample


def check_sources(table: pd.DataFrame, problems: pd.Series, config: Config) -> None:
    """Raise BrokenSourceError when more than config.broken_source_share of a folder's first
    config.broken_source_sample recordings (table order) are unreadable (`problems` != '')."""
    folders, first = source_folders(table), first_rows(table, config)
    for folder in folders.unique():
        judged = problems[(folders == folder) & first]
        bad = judged[judged != ""]
        if len(judged) and len(bad) > config.broken_source_share * len(judged):
            paths = table.loc[bad.index[:3], "path"].astype(str).tolist()
            raise BrokenSourceError(
                f"source {folder!r}: {len(bad)} of its first {len(judged)} files cannot be read "
                f"(e.g. {paths}; first reason: {bad.iloc[0]}). Check that this input is the "
                "right dataset, fully downloaded and attached at the expected folder, or leave "
                "it out"
            )


def tail_problem(path: str, seconds: float, config: Config) -> tuple[str, float | None]:
    """Decode the last clip before the header's end: ('', None) when it decodes as promised,
    else why not, and the real length when the audio ends early (a cut download)."""
    offset = max(seconds - config.clip_seconds, 0.0)
    try:
        crop = load_crop(path, config.sample_rate, offset, config.clip_seconds)
    except AudioError as err:
        return f"{UNDECODABLE} ({err.__cause__ or err})", None
    decoded = crop.decoded_seconds
    if decoded is None:
        return "", None
    return f"cut: the header says {seconds:.1f} s, the audio ends at {decoded:.1f} s", decoded


def probe_decodes(
    table: pd.DataFrame,
    seconds: np.ndarray,
    problems: pd.Series,
    config: Config,
    findings: LoaderFindings,
    workers: int,
) -> pd.Series:
    """Per row: '' or why its last clip did not decode as the header promised, for the rows a
    folder is judged on whose header was fine (the rest: ''). Real lengths of cut files go to
    `findings`, so the loader draws its crops inside them from the first epoch."""
    out = pd.Series("", index=table.index, dtype=object)
    chosen = np.flatnonzero((first_rows(table, config) & (problems == "")).to_numpy())
    paths = table["path"].astype(str).to_numpy()

    def probe(row: int) -> tuple[str, float | None]:
        return tail_problem(paths[row], float(seconds[row]), config)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(probe, chosen))
    for row, (problem, decoded) in zip(chosen, results, strict=True):
        out.iloc[row] = problem
        if decoded is not None:
            findings.append(paths[row], DECODED_SECONDS, decoded)
    return out


def index_recordings(
    table: pd.DataFrame,
    config: Config,
    out_dir: str | Path,
    info: DistInfo,
    workers: int | None = None,
) -> pd.DataFrame:
    """`table` with a `seconds` column, less the recordings whose header cannot be read or
    whose probed last clip does not decode.

    Rank 0 reads (or reloads) the durations index out_dir/durations.csv, probes the first files
    of each folder (probe_decodes) and writes out_dir/skipped_files.csv (kept rows the loader
    appended in an earlier session); every rank gets the same table. Raises BrokenSourceError
    for a mostly-broken folder.
    """
    out_dir = Path(out_dir)
    found = None
    if info.is_main:
        try:
            found = header_pass(table, config, out_dir, workers or os.cpu_count() or 2)
        except RuntimeError as err:  # raised on every rank, not only here
            found = err
    found = broadcast_object(found, info)
    if isinstance(found, Exception):
        raise found
    seconds, problems, probed = found
    check_sources(table, problems.where(problems != "", probed), config)
    reasons = problems.where(problems != "", probed.where(probed.str.startswith(UNDECODABLE), ""))
    bad = reasons != ""
    if info.is_main:
        write_skipped(table, reasons, out_dir)
        if bad.any():
            print(f"header pass: {int(bad.sum())} of {len(table)} recordings unreadable, "
                  f"skipped; listed in {out_dir / SKIPPED_FILE}")  # fmt: skip
        cut = int(probed.str.startswith("cut").sum())
        if cut:
            print(
                f"header pass: {cut} probed recordings end before their header says (cut "
                f"downloads?); crops stay inside their audio: {out_dir / FINDINGS_FILE}"
            )
    barrier(info)
    out = table.assign(seconds=seconds)
    return out[~bad.to_numpy()].reset_index(drop=True)


def header_pass(
    table: pd.DataFrame, config: Config, out_dir: Path, workers: int
) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """(seconds per row, header problem per row, decode-probe problem per row): the durations
    index read or reloaded, then the first files of each folder probed."""
    paths = table["path"].astype(str)
    built = load_or_build_index(sorted(set(paths)), out_dir / DURATIONS_FILE, workers)
    index = built[["path", "seconds", "error"]].assign(path=built["path"].astype(str))
    index = index.drop_duplicates("path").set_index("path")
    missing = sorted(set(paths) - set(index.index))
    if missing:
        raise RuntimeError(f"durations index lacks {len(missing)} recordings, e.g. {missing[0]}")
    rows = index.loc[paths.to_numpy()].reset_index()
    problems = header_problems(rows).set_axis(table.index)
    seconds = rows["seconds"].to_numpy(dtype=np.float64)
    probed = probe_decodes(table, seconds, problems, config, findings_for(out_dir), workers)
    return seconds, problems, probed


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
