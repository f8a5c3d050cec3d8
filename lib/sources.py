"""Recording tables: any BirdCLEF year and the pre-training sources in one shape, and the folds.

Every source speaks its own dialect (see shared/birdclef2023.md): 2021-2023 name species by
eBird code in `primary_label` and keep audio under `<label>/<file>`; 2020 ("birdsong-recognition")
and Xeno-canto extended name them in `ebird_code`, give secondary labels as
"Scientific name_Common name" strings, and the latter splits audio into `A-M/` and `N-Z/`.
`read_source` turns each into one table so the dataset and folds never care where a file
came from. The BirdCLEF years (lib.competitions.PROFILES: 2023-2026) are read through their
profiles, with labels always as strings (numeric iNaturalist ids, sonotypes):

    path (absolute str) | primary_label | secondary_labels (list[str]) | source | xc_id
    | recording_id | rating
    | root (the attached folder the file lies in: Xeno-canto's A-M and N-Z halves differ)

`recording_id` is what de-duplicates across sources and years: 'XC123' (= xc_id) for a
Xeno-canto recording, '<collection><number>' ('iNat12345', 'CSA99') for the others, '' if the
file name says neither. 2026's labelled train soundscapes become rows too
(`soundscape_segments`): one 5-s segment each, with `offset` and `duration` (seconds) and
`secondary_weight` 1.0 (every label of a segment is a target), folded whole per file.

A missing table, audio folder or column stops with an error that names it and the source (the
run would be wrong otherwise); files listed but absent on disk are warned about with a count and
dropped, so training never meets them mid-epoch.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from lib.competitions import (
    LABEL_DTYPE,
    PROFILES,
    CompetitionProfile,
    class_order,
    parse_label_list,
    read_soundscape_labels,
)

COLUMNS = [
    "path", "primary_label", "secondary_labels", "source", "xc_id", "recording_id", "rating",
    "root",
]  # fmt: skip
# Segment rows (soundscape_segments) add these; recordings have NaN there.
SEGMENT_COLUMNS = ["offset", "duration", "secondary_weight"]


@dataclass(frozen=True)
class SourceFormat:
    """Where one source keeps its table and audio, and which column holds the eBird code."""

    table: str
    audio_dirs: tuple[str, ...]  # searched in order; the first holding a file wins
    label: str


# The older sources, in de-duplication preference order: the 2023 copy first, then the newest.
# The BirdCLEF years of lib.competitions.PROFILES are sources too (source_format).
SOURCES: dict[str, SourceFormat] = {
    "birdclef-2023": SourceFormat("train_metadata.csv", ("train_audio",), "primary_label"),
    "birdclef-2022": SourceFormat("train_metadata.csv", ("train_audio",), "primary_label"),
    "birdclef-2021": SourceFormat("train_metadata.csv", ("train_short_audio",), "primary_label"),
    "xeno-canto-extended": SourceFormat("train_extended.csv", ("A-M", "N-Z"), "ebird_code"),
    "birdsong-recognition": SourceFormat("train.csv", ("train_audio",), "ebird_code"),
}
AUDIO_SUFFIXES = (".ogg", ".mp3", ".wav", ".flac")
_XC_ID = re.compile(r"XC(\d+)", re.IGNORECASE)
# Collections whose file names are '<collection><number>.ogg' (2025-26: XC, iNat, CSA).
RECORDING_ID_PREFIXES = tuple(
    dict.fromkeys(["XC", *(c for p in PROFILES.values() for c in p.collections)])
)
_RECORDING_ID = re.compile(rf"(?i)^({'|'.join(RECORDING_ID_PREFIXES)})(\d+)$")


def source_names() -> list[str]:
    """Every readable source, newest first (the de-duplication preference order): the
    BirdCLEF years from the newest down, then the older sources of SOURCES."""
    years = sorted(PROFILES, reverse=True)
    return [*years, *(name for name in SOURCES if name not in PROFILES)]


def _source_format(name: str) -> SourceFormat:
    """SOURCES' entry, else the competition profile's files (train table, train_audio)."""
    if name in SOURCES:
        return SOURCES[name]
    if name in PROFILES:
        comp = PROFILES[name]
        return SourceFormat(comp.metadata_file, (comp.train_audio_dir,), comp.label_column)
    raise KeyError(f"unknown source {name!r}; known sources: {source_names()}")


def _as_roots(root: str | Path | Sequence[str | Path]) -> list[Path]:
    """One folder, or several (Xeno-canto extended ships A-M and N-Z as two datasets)."""
    if isinstance(root, (str, Path)):
        return [Path(root)]
    return [Path(r) for r in root]


def _read_table(name: str, fmt: SourceFormat, roots: list[Path]) -> pd.DataFrame:
    """The metadata CSV of every root that holds one, concatenated; required columns checked.

    Xeno-canto extended ships as two datasets (A-M, N-Z) whose tables may each list their own
    half or both list both: rows are concatenated and repeats dropped in `read_source`.
    """
    found = [r / fmt.table for r in roots if (r / fmt.table).is_file()]
    if not found:
        tried = ", ".join(str(r / fmt.table) for r in roots)
        raise FileNotFoundError(
            f"{name}: metadata table not found (tried {tried}); point the {name!r} root at the "
            f"folder that holds {fmt.table}"
        )
    tables = []
    for path in found:
        # Labels as strings: a numeric iNat id must stay "41778", not become 41778.
        text = dict.fromkeys([fmt.label, "secondary_labels", "filename"], LABEL_DTYPE)
        table = pd.read_csv(path, dtype=text)
        for column in (fmt.label, "filename"):
            if column not in table.columns:
                raise KeyError(
                    f"{name}: column {column!r} missing from {path} (columns: "
                    f"{list(table.columns)}); is this really the {name} table?"
                )
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _index_audio(name: str, fmt: SourceFormat, roots: list[Path]) -> dict[str, tuple[str, str]]:
    """Relative 'label/file' -> (absolute path, its root folder) of every audio file under the
    audio folders.

    One directory walk instead of a stat per row: fast on Kaggle's network-backed inputs.
    """
    dirs = [(r, r / d) for r in roots for d in fmt.audio_dirs if (r / d).is_dir()]
    if not dirs:
        tried = ", ".join(str(r / d) for r in roots for d in fmt.audio_dirs)
        raise FileNotFoundError(f"{name}: no audio folder found (tried {tried})")
    index: dict[str, tuple[str, str]] = {}
    for root, audio_dir in dirs:
        top, root_text = os.path.abspath(audio_dir), os.path.abspath(root)
        for folder, _, files in os.walk(top):
            rel_folder = os.path.relpath(folder, top).replace(os.sep, "/")
            for file in files:
                if file.lower().endswith(AUDIO_SUFFIXES):
                    rel = file if rel_folder == "." else f"{rel_folder}/{file}"
                    index.setdefault(rel, (os.path.join(folder, file), root_text))
    return index


def _name_to_code(table: pd.DataFrame, label: str) -> dict[str, str]:
    """2020 dialect: 'Sci name_Common name', scientific and common names -> eBird code."""
    mapping: dict[str, str] = {}
    for column in ("primary_label", "sci_name", "species"):
        if column in table.columns and column != label:
            pairs = table[[column, label]].dropna().astype(str)
            mapping.update(zip(pairs[column], pairs[label], strict=True))
    return mapping


def _secondary_labels(table: pd.DataFrame, label: str) -> list[list[str]]:
    """Secondary labels as eBird codes; 2020-dialect names are mapped, unknown ones dropped."""
    if "secondary_labels" not in table.columns:
        return [[] for _ in range(len(table))]
    parsed = [parse_label_list(v) for v in table["secondary_labels"]]
    if label == "primary_label":  # 2021-2023 already use eBird codes
        return parsed
    names = _name_to_code(table, label)
    codes = set(table[label].astype(str))
    return [
        [c if c in codes else names[c] for c in row if c in codes or c in names] for row in parsed
    ]


def _xc_ids(table: pd.DataFrame) -> list[str]:
    """'XC123456' from the xc_id column, else the file name, else the url; '' if none."""
    digits = pd.Series(np.nan, index=table.index, dtype=object)
    if "xc_id" in table.columns:
        numbers = pd.to_numeric(table["xc_id"], errors="coerce")
        digits = numbers.map(lambda v: str(int(v)) if pd.notna(v) else np.nan)
    names = table["filename"].astype(str).str.extract(r"(?i)XC(\d+)[^/]*$")[0]
    digits = digits.fillna(names)
    if "url" in table.columns:
        digits = digits.fillna(table["url"].astype(str).str.extract(r"(\d+)/?\s*$")[0])
    return [f"XC{int(d)}" if isinstance(d, str) else "" for d in digits]


def _recording_ids(table: pd.DataFrame, xc_ids: list[str]) -> list[str]:
    """The xc_id where there is one, else '<collection><number>' from the file name
    ('iNat12345', 'CSA99'; RECORDING_ID_PREFIXES), else ''."""
    canonical = {prefix.lower(): prefix for prefix in RECORDING_ID_PREFIXES}
    stems = [Path(f.strip()).stem for f in table["filename"].astype(str)]
    ids = []
    for xc_id, stem in zip(xc_ids, stems, strict=True):
        match = None if xc_id else _RECORDING_ID.match(stem)
        found = f"{canonical[match.group(1).lower()]}{int(match.group(2))}" if match else ""
        ids.append(xc_id or found)
    return ids


def _relative_paths(table: pd.DataFrame, label: str) -> list[str]:
    """'label/file' of each row: 2021 and 2020-dialect tables give the bare file name."""
    labels = table[label].astype(str).str.strip()
    files = table["filename"].astype(str).str.strip()
    return [f if "/" in f else f"{lab}/{f}" for lab, f in zip(labels, files, strict=True)]


def read_source(name: str, root: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """One source's recordings in the common table (COLUMNS); listed-but-missing files dropped.

    `root` is the source's folder (e.g. /kaggle/input/birdclef-2022), or several folders for a
    source split over datasets (Xeno-canto extended A-M and N-Z): the tables of all of them are
    read (a file listed twice counts once), and each file is found in whichever folder has it.
    Listing never decodes: a 0-byte or non-audio file is listed like any other; the training
    data's header pass finds those (each row's `source` says where it came from).
    """
    fmt, roots = _source_format(name), _as_roots(root)
    table = _read_table(name, fmt, roots)
    index = _index_audio(name, fmt, roots)
    rel = _relative_paths(table, fmt.label)
    once = ~pd.Series(rel).duplicated().to_numpy()  # a file listed by several roots' tables
    table, rel = table[once].reset_index(drop=True), np.asarray(rel, dtype=object)[once].tolist()
    labels = table[fmt.label].astype(str).str.strip()
    rating = table["rating"] if "rating" in table.columns else np.nan
    found = [index.get(r, ("", "")) for r in rel]
    xc_ids = _xc_ids(table)
    out = pd.DataFrame(
        {
            "path": [f[0] for f in found],
            "primary_label": labels,
            "secondary_labels": _secondary_labels(table, fmt.label),
            "source": name,
            "xc_id": xc_ids,
            "recording_id": _recording_ids(table, xc_ids),
            "rating": pd.to_numeric(pd.Series(rating, index=table.index), errors="coerce"),
            "root": [f[1] for f in found],
        }
    )[COLUMNS]
    missing = out["path"] == ""
    if missing.any():
        example = rel[int(np.flatnonzero(missing.to_numpy())[0])]
        absent = [d for d in fmt.audio_dirs if not any((r / d).is_dir() for r in roots)]
        hint = f"; no {' or '.join(absent)} folder is attached" if absent else ""
        warnings.warn(
            f"{name}: {int(missing.sum())} of {len(out)} files listed in {fmt.table} are missing "
            f"under {[str(r) for r in roots]} (e.g. {example}){hint}; they are skipped",
            stacklevel=2,
        )
    return out[~missing].reset_index(drop=True)


def read_birdclef2023(comp_dir: str | Path) -> pd.DataFrame:
    """BirdCLEF 2023's own recordings (fine-tuning data): read_competition of its profile."""
    return read_competition(PROFILES["birdclef-2023"], comp_dir)


def read_competition(profile: CompetitionProfile, root: str | Path) -> pd.DataFrame:
    """A year's fine-tuning table: its recordings (COLUMNS, labels as strings) and, where the
    year has labelled train soundscapes (2026), their 5-s segments (soundscape_segments).

    `root` is the competition folder (lib.paths.find_competition(slug=profile.slug)).
    """
    recordings = read_source(profile.slug, root)
    if not profile.soundscape_labels_file:
        return recordings
    return pd.concat([recordings, soundscape_segments(profile, root)], ignore_index=True)


def soundscape_segments(profile: CompetitionProfile, root: str | Path) -> pd.DataFrame:
    """The year's labelled train-soundscape segments as training rows (COLUMNS + SEGMENT_COLUMNS).

    One row per distinct segment (duplicate rows merged: lib.competitions.read_soundscape_labels):
    path = the soundscape, `offset` = its start and `duration` its length in seconds (the
    dataset reads exactly that span, no random crop), primary label = the first label, the
    rest secondary at `secondary_weight` 1.0 (every label is a verified presence), source =
    '<slug>-soundscapes'. Segments without a label, and files missing under the soundscape
    folder, are left out with a warning naming how many.
    """
    if not profile.soundscape_labels_file or not profile.unlabeled_soundscapes_dir:
        raise ValueError(f"{profile.slug}: the profile names no labelled soundscapes")
    root = Path(root)
    segments = read_soundscape_labels(root / profile.soundscape_labels_file)
    folder = root / profile.unlabeled_soundscapes_dir
    paths = [os.path.abspath(folder / name) for name in segments["filename"]]
    present = np.array([os.path.isfile(path) for path in paths], dtype=bool)
    labelled = segments["labels"].map(len).to_numpy() > 0
    dropped = {
        "without a label": int((~labelled).sum()),
        f"whose file is missing under {folder}": int((labelled & ~present).sum()),
    }
    if any(dropped.values()):
        counts = ", ".join(f"{n} {why}" for why, n in dropped.items() if n)
        where = root / profile.soundscape_labels_file
        warnings.warn(f"{where}: segments left out: {counts}", stacklevel=2)
    keep = labelled & present
    rows = segments[keep].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "path": np.asarray(paths, dtype=object)[keep],
            "primary_label": rows["labels"].map(lambda labels: labels[0]),
            "secondary_labels": rows["labels"].map(lambda labels: list(labels[1:])),
            "source": f"{profile.slug}-soundscapes",
            "xc_id": "",
            "recording_id": "",
            "rating": np.nan,
            "root": str(os.path.abspath(root)),
            "offset": rows["start"].astype(float),
            "duration": (rows["end"] - rows["start"]).astype(float),
            "secondary_weight": 1.0,
        }
    )
    return out[COLUMNS + SEGMENT_COLUMNS]


def training_classes(profile: CompetitionProfile, root: str | Path, table: pd.DataFrame):
    """The classes a year trains: its submission's columns in order (lib.competitions.
    class_order), each one even without a recording (it gets a column, learns no positive).
    Labels of `table` outside them are warned about: they train as no target at all."""
    classes = class_order(profile, root)
    known = set(classes)
    labels = [str(v) for v in table["primary_label"]]
    labels += [v for row in table.get("secondary_labels", []) for v in parse_label_list(row)]
    outside = sorted(set(labels) - known)
    if outside:
        warnings.warn(
            f"{profile.slug}: {len(outside)} training label(s) are not submission columns, "
            f"e.g. {outside[:5]}; they get no target (check {profile.metadata_file})",
            stacklevel=2,
        )
    return classes


def read_sources(roots: dict[str, str | Path | Sequence[str | Path]]) -> pd.DataFrame:
    """Union of the given sources, one row per recording (recording_id: XC, iNat, CSA ids).

    `roots` maps source names (SOURCES, or a BirdCLEF year's slug: a competition profile's
    `pretrain_sources`) to their folders. A recording that several sources carry is kept once:
    the newest source's copy (source_names order: 2025 before 2024 before 2023, then 2022 ...),
    newer sources carry corrected labels. Rows without a recording id are all kept.
    """
    order = source_names()
    unknown = sorted(set(roots) - set(order))
    if unknown:
        raise KeyError(f"unknown source(s) {unknown}; known sources: {order}")
    tables = [read_source(name, roots[name]) for name in order if name in roots]
    if not tables:
        raise ValueError(f"read_sources: no sources given; known sources: {order}")
    table = pd.concat(tables, ignore_index=True)
    duplicate = table["recording_id"].ne("") & table["recording_id"].duplicated(keep="first")
    return table[~duplicate].reset_index(drop=True)


def class_list(table: pd.DataFrame) -> list[str]:
    """Sorted unique primary labels: for 2023 exactly sample_submission's column order (for
    any year, the submission's order is lib.competitions.class_order: training_classes)."""
    return sorted(table["primary_label"].astype(str).unique())


def segment_rows(table: pd.DataFrame) -> np.ndarray:
    """(rows,) bool: rows that are soundscape segments (a finite `offset`), not recordings."""
    if "offset" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return np.isfinite(pd.to_numeric(table["offset"], errors="coerce").to_numpy(dtype=float))


def make_folds(
    table: pd.DataFrame, n_folds: int = 5, minor_threshold: int = 5, seed: int = 42
) -> pd.DataFrame:
    """A copy of `table` with int column `fold`: stratified k-fold on primary_label.

    Classes with <= minor_threshold recordings (or fewer than n_folds, which cannot be spread
    over every fold) get fold -1: they are in the training part of every fold and never
    validated, so a rare species is never missing from a model's training data.
    Soundscape segments (segment_rows) are folded whole per file (file_folds): neighbouring
    windows of one file in two folds would leak. Deterministic for a given table order and seed.
    """
    if n_folds < 2:
        raise ValueError(f"make_folds: n_folds must be >= 2, got {n_folds}")
    out = table.reset_index(drop=True).copy()
    segments = segment_rows(out)
    out["fold"] = -1
    recordings = np.flatnonzero(~segments)
    labels = out["primary_label"].iloc[recordings].astype(str).reset_index(drop=True)
    out.loc[recordings, "fold"] = stratified_folds(labels, n_folds, minor_threshold, seed)
    if segments.any():
        paths = out.loc[segments, "path"].astype(str)
        out.loc[segments, "fold"] = file_folds(paths, n_folds, seed)
    out["fold"] = out["fold"].astype(int)
    return out


def stratified_folds(
    labels: pd.Series, n_folds: int, minor_threshold: int, seed: int
) -> np.ndarray:
    """(rows,) fold per recording: StratifiedKFold on the labels, -1 for the rare classes."""
    counts = labels.map(labels.value_counts())
    minor = (counts <= minor_threshold) | (counts < n_folds)
    folds = np.full(len(labels), -1)
    major = np.flatnonzero(~minor.to_numpy())
    if len(major) == 0:
        warnings.warn(
            f"make_folds: every class has <= {max(minor_threshold, n_folds - 1)} recordings; "
            "no validation folds (all rows are fold -1)",
            stacklevel=3,
        )
        return folds
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, valid) in enumerate(splitter.split(major, labels.iloc[major])):
        folds[major[valid]] = fold
    return folds


def file_folds(paths: pd.Series, n_folds: int, seed: int) -> np.ndarray:
    """(rows,) fold per segment: each file whole in one fold, the files with the most segments
    first, each onto the fold with the fewest segments so far (ties: a seeded shuffle)."""
    counts = paths.value_counts()
    files = np.random.default_rng(seed).permutation(sorted(counts.index))
    files = sorted(files, key=lambda name: -counts[name])  # stable: the shuffle breaks ties
    load, fold_of = np.zeros(n_folds), {}
    for name in files:
        fold_of[name] = int(np.argmin(load))
        load[fold_of[name]] += counts[name]
    return paths.map(fold_of).to_numpy(dtype=int)


def split_fold(table: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) of one fold: valid is `fold == fold`; train is the rest, fold -1 included."""
    if "fold" not in table.columns:
        raise KeyError("split_fold: the table has no 'fold' column; call make_folds first")
    folds = sorted(f for f in table["fold"].unique() if f >= 0)
    if fold not in folds:
        raise ValueError(f"split_fold: fold {fold} not in the table's folds {folds}")
    is_valid = table["fold"] == fold
    return table[~is_valid].reset_index(drop=True), table[is_valid].reset_index(drop=True)
