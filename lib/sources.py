"""Recording tables: BirdCLEF 2023 and the pre-training sources in one shape, and the folds.

Every source speaks its own dialect (see shared/birdclef2023.md): 2021-2023 name species by
eBird code in `primary_label` and keep audio under `<label>/<file>`; 2020 ("birdsong-recognition")
and Xeno-canto extended name them in `ebird_code`, give secondary labels as
"Scientific name_Common name" strings, and the latter splits audio into `A-M/` and `N-Z/`.
`read_source` turns each into one table so the dataset and folds never care where a file
came from:

    path (absolute str) | primary_label | secondary_labels (list[str]) | source | xc_id | rating
    | root (the attached folder the file lies in: Xeno-canto's A-M and N-Z halves differ)

A missing table, audio folder or column stops with an error that names it and the source (the
run would be wrong otherwise); files listed but absent on disk are warned about with a count and
dropped, so training never meets them mid-epoch.
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

COLUMNS = ["path", "primary_label", "secondary_labels", "source", "xc_id", "rating", "root"]


@dataclass(frozen=True)
class SourceFormat:
    """Where one source keeps its table and audio, and which column holds the eBird code."""

    table: str
    audio_dirs: tuple[str, ...]  # searched in order; the first holding a file wins
    label: str


# In de-duplication preference order: the 2023 copy first, then the newest source.
SOURCES: dict[str, SourceFormat] = {
    "birdclef-2023": SourceFormat("train_metadata.csv", ("train_audio",), "primary_label"),
    "birdclef-2022": SourceFormat("train_metadata.csv", ("train_audio",), "primary_label"),
    "birdclef-2021": SourceFormat("train_metadata.csv", ("train_short_audio",), "primary_label"),
    "xeno-canto-extended": SourceFormat("train_extended.csv", ("A-M", "N-Z"), "ebird_code"),
    "birdsong-recognition": SourceFormat("train.csv", ("train_audio",), "ebird_code"),
}
AUDIO_SUFFIXES = (".ogg", ".mp3", ".wav", ".flac")
_XC_ID = re.compile(r"XC(\d+)", re.IGNORECASE)


def _source_format(name: str) -> SourceFormat:
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known sources: {list(SOURCES)}")
    return SOURCES[name]


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
        table = pd.read_csv(path)
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


def parse_label_list(value) -> list[str]:
    """A CSV's Python-list string ("['a', 'b']"), a list, a bare label, '' or NaN -> list."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return [value.strip()]  # a bare label
    if isinstance(parsed, str):
        return [parsed] if parsed else []
    return [str(v) for v in parsed if str(v)]


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
    out = pd.DataFrame(
        {
            "path": [f[0] for f in found],
            "primary_label": labels,
            "secondary_labels": _secondary_labels(table, fmt.label),
            "source": name,
            "xc_id": _xc_ids(table),
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
    """The competition's own recordings (fine-tuning data)."""
    return read_source("birdclef-2023", comp_dir)


def read_sources(roots: dict[str, str | Path | Sequence[str | Path]]) -> pd.DataFrame:
    """Union of the given sources, one row per Xeno-canto recording.

    A recording that several sources carry (same XC id) is kept once: the 2023 copy if there is
    one, else the newest source's (SOURCES order) - newer sources carry corrected labels.
    Rows without an XC id are all kept.
    """
    unknown = sorted(set(roots) - set(SOURCES))
    if unknown:
        raise KeyError(f"unknown source(s) {unknown}; known sources: {list(SOURCES)}")
    tables = [read_source(name, roots[name]) for name in SOURCES if name in roots]
    if not tables:
        raise ValueError(f"read_sources: no sources given; known sources: {list(SOURCES)}")
    table = pd.concat(tables, ignore_index=True)
    duplicate = table["xc_id"].ne("") & table["xc_id"].duplicated(keep="first")
    return table[~duplicate].reset_index(drop=True)


def class_list(table: pd.DataFrame) -> list[str]:
    """Sorted unique primary labels: for 2023 exactly sample_submission's column order."""
    return sorted(table["primary_label"].astype(str).unique())


def make_folds(
    table: pd.DataFrame, n_folds: int = 5, minor_threshold: int = 5, seed: int = 42
) -> pd.DataFrame:
    """A copy of `table` with int column `fold`: stratified k-fold on primary_label.

    Classes with <= minor_threshold recordings (or fewer than n_folds, which cannot be spread
    over every fold) get fold -1: they are in the training part of every fold and never
    validated, so a rare species is never missing from a model's training data.
    Deterministic for a given table order and seed.
    """
    if n_folds < 2:
        raise ValueError(f"make_folds: n_folds must be >= 2, got {n_folds}")
    out = table.reset_index(drop=True).copy()
    labels = out["primary_label"].astype(str)
    counts = labels.map(labels.value_counts())
    minor = (counts <= minor_threshold) | (counts < n_folds)
    out["fold"] = -1
    major = np.flatnonzero(~minor.to_numpy())
    if len(major) == 0:
        warnings.warn(
            f"make_folds: every class has <= {max(minor_threshold, n_folds - 1)} recordings; "
            "no validation folds (all rows are fold -1)",
            stacklevel=2,
        )
        return out
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(major), -1)
    for fold, (_, valid) in enumerate(splitter.split(major, labels.iloc[major])):
        folds[valid] = fold
    out.loc[major, "fold"] = folds
    out["fold"] = out["fold"].astype(int)
    return out


def split_fold(table: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) of one fold: valid is `fold == fold`; train is the rest, fold -1 included."""
    if "fold" not in table.columns:
        raise KeyError("split_fold: the table has no 'fold' column; call make_folds first")
    folds = sorted(f for f in table["fold"].unique() if f >= 0)
    if fold not in folds:
        raise ValueError(f"split_fold: fold {fold} not in the table's folds {folds}")
    is_valid = table["fold"] == fold
    return table[~is_valid].reset_index(drop=True), table[is_valid].reset_index(drop=True)
