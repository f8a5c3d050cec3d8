"""Competition profiles: everything that differs between BirdCLEF 2023, 2024, 2025 and 2026.

One table (`PROFILES`), like the sources table in lib.sources: the notebooks, the builder and
the rehearsal read the year's file names, columns, test shape, CPU limit and metric from here,
so nothing year-specific is hard-coded elsewhere. Facts and their sources are in
shared/birdclef-years.md; a comment "unconfirmed" marks what no public copy of the Kaggle pages
states, so code that depends on it must look the thing up at run time and fail clearly.

Labels are always strings: 2025-26 name non-bird classes by numeric iNaturalist ids (`41778`)
or insect sonotypes (`47158son16`); read as numbers they no longer match the submission's
column names. `read_train_table`, `class_order` and `read_soundscape_labels` are the only
readers of these files, and they keep labels as `str`.

Pure functions of their arguments; nothing is read at import.
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.metric import METRICS

DEFAULT_COMPETITION = "birdclef-2023"
WINDOW_SECONDS = 5  # every year scores 5-second windows; row_id = <file stem>_<end second>
LABEL_DTYPE = str  # label columns are read as this in every year (see the module docstring)
# The inference budget leaves this much of the CPU limit for start-up, the notebook's own
# overhead and Kaggle's scheduling: 120 -> 110 minutes is lib.config's time_budget_minutes.
INFERENCE_MARGIN_MINUTES = 10
CLASS_ORDER_SOURCES = ("sample_submission", "taxonomy")


@dataclass(frozen=True)
class CompetitionProfile:
    """One BirdCLEF year: where its files are, what its test looks like, how it is scored."""

    slug: str
    title: str
    metadata_file: str  # the training recordings' table
    taxonomy_file: str
    class_order_from: str  # "sample_submission" (its columns) or "taxonomy" (its label rows)
    test_file_seconds: int
    cpu_limit_minutes: int
    metric: str  # a key of lib.metric.METRICS
    test_stem_example: str  # the shape of a hidden test file's name, for messages and fakes
    pretrain_sources: tuple[str, ...]  # newest first: the de-duplication preference order
    unlabeled_soundscapes_dir: str | None = None
    unlabeled_stem_example: str | None = None  # an unlabeled soundscape's file-name shape
    soundscape_labels_file: str | None = None  # labelled 5-s segments of train soundscapes
    collections: tuple[str, ...] = ()  # values of the table's `collection` column; () = none
    label_column: str = "primary_label"
    secondary_labels_column: str = "secondary_labels"
    taxonomy_label_column: str = "primary_label"  # where class_order_from == "taxonomy"
    train_audio_dir: str = "train_audio"
    test_dir: str = "test_soundscapes"
    sample_submission_file: str = "sample_submission.csv"

    def __post_init__(self) -> None:
        """Reject a profile that could not work, naming the field (a typo in the table)."""
        checks = {
            f"class_order_from must be one of {CLASS_ORDER_SOURCES}": self.class_order_from
            in CLASS_ORDER_SOURCES,
            f"metric must be one of {list(METRICS)}": self.metric in METRICS,
            f"test_file_seconds must be a positive multiple of {WINDOW_SECONDS}": (
                self.test_file_seconds > 0 and self.test_file_seconds % WINDOW_SECONDS == 0
            ),
            f"cpu_limit_minutes must exceed {INFERENCE_MARGIN_MINUTES}": (
                self.cpu_limit_minutes > INFERENCE_MARGIN_MINUTES
            ),
            "pretrain_sources must not list the competition itself": (
                self.slug not in self.pretrain_sources
            ),
            "unlabeled_soundscapes_dir and unlabeled_stem_example go together": (
                (self.unlabeled_soundscapes_dir is None) == (self.unlabeled_stem_example is None)
            ),
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"competition profile {self.slug!r}: {'; '.join(failed)}")

    @property
    def rows_per_test_file(self) -> int:
        """Submission rows of one hidden test file: one per 5-second window."""
        return self.test_file_seconds // WINDOW_SECONDS

    @property
    def inference_budget_minutes(self) -> int:
        """What the inference notebook may spend so it never meets the CPU limit."""
        return self.cpu_limit_minutes - INFERENCE_MARGIN_MINUTES

    @property
    def competition_url(self) -> str:
        return f"https://www.kaggle.com/competitions/{self.slug}"


# Names in pretrain_sources: lib.sources.SOURCES / kernels/train.py SOURCE_SLUGS for the older
# sources, competition slugs for the BirdCLEF years. Each year adds its predecessors.
_OLDER_SOURCES = ("birdclef-2022", "birdclef-2021", "xeno-canto-extended", "birdsong-recognition")

PROFILES: dict[str, CompetitionProfile] = {
    "birdclef-2023": CompetitionProfile(
        slug="birdclef-2023",
        title="BirdCLEF 2023",
        metadata_file="train_metadata.csv",
        taxonomy_file="eBird_Taxonomy_v2021.csv",
        class_order_from="sample_submission",
        test_file_seconds=600,
        cpu_limit_minutes=120,
        metric="padded_cmap",
        test_stem_example="soundscape_29201",
        pretrain_sources=_OLDER_SOURCES,
    ),
    "birdclef-2024": CompetitionProfile(
        slug="birdclef-2024",
        title="BirdCLEF 2024",
        metadata_file="train_metadata.csv",
        taxonomy_file="eBird_Taxonomy_v2021.csv",
        class_order_from="sample_submission",
        test_file_seconds=240,  # ~1,100 files of 4 minutes
        cpu_limit_minutes=120,
        metric="roc_auc",
        test_stem_example="soundscape_1446779",  # soundscape_<id>; id length unconfirmed
        pretrain_sources=("birdclef-2023", *_OLDER_SOURCES),
        unlabeled_soundscapes_dir="unlabeled_soundscapes",  # 4-min files; count unconfirmed
        unlabeled_stem_example="1000170626",  # unconfirmed
    ),
    "birdclef-2025": CompetitionProfile(
        slug="birdclef-2025",
        title="BirdCLEF+ 2025",
        metadata_file="train.csv",
        taxonomy_file="taxonomy.csv",  # columns unconfirmed (class_name is stated)
        class_order_from="sample_submission",
        test_file_seconds=60,
        cpu_limit_minutes=90,
        metric="roc_auc",
        test_stem_example="soundscape_8358733",  # unconfirmed
        pretrain_sources=("birdclef-2024", "birdclef-2023", *_OLDER_SOURCES),
        unlabeled_soundscapes_dir="train_soundscapes",  # 9,726 files of 1 minute
        unlabeled_stem_example="H02_20230420_074000",  # [site]_[date]_[time]
        collections=("XC", "iNat", "CSA"),  # the full list is unconfirmed
    ),
    "birdclef-2026": CompetitionProfile(
        slug="birdclef-2026",
        title="BirdCLEF+ 2026",
        metadata_file="train.csv",
        taxonomy_file="taxonomy.csv",  # primary_label, scientific_name, class_name
        class_order_from="taxonomy",  # taxonomy rows = submission columns
        test_file_seconds=60,
        cpu_limit_minutes=90,
        metric="roc_auc",
        test_stem_example="BC2026_Test_0001_S05_20250227_010002",
        pretrain_sources=("birdclef-2025", "birdclef-2024", "birdclef-2023", *_OLDER_SOURCES),
        unlabeled_soundscapes_dir="train_soundscapes",
        unlabeled_stem_example="BC2026_Train_0001_S08_20250606_030007",
        soundscape_labels_file="train_soundscapes_labels.csv",  # has duplicate rows
        collections=("XC", "iNat"),
    ),
}


def profile_settings(profile: CompetitionProfile) -> dict:
    """The Config fields a year sets (lib.config.Config): metric, test file length, inference
    budget. A notebook starts from these, then its own SETTINGS and $BIRDCLEF_CONFIG on top."""
    return {
        "metric": profile.metric,
        "test_file_seconds": profile.test_file_seconds,
        "time_budget_minutes": float(profile.inference_budget_minutes),
    }


def profile(slug: str) -> CompetitionProfile:
    """The profile of `slug` (e.g. "birdclef-2025"); an unknown slug lists the known ones."""
    if slug not in PROFILES:
        raise KeyError(
            f"unknown competition {slug!r}; known competitions: {', '.join(PROFILES)} "
            "(add a CompetitionProfile to PROFILES in lib/competitions.py for a new year)"
        )
    return PROFILES[slug]


def parse_label_list(value) -> list[str]:
    """A CSV's Python-list string ("['a', 'b']"), a list, a bare label, '' or NaN -> list of
    str (a numeric label such as 41778 in a list string comes back as "41778")."""
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
    if isinstance(parsed, (int, float)):
        return [value.strip()]  # a bare numeric label, as written ("41778", not 41778)
    return [str(v) for v in parsed if str(v)]


def _read_labelled_csv(path: Path, label_columns: list[str], what: str) -> pd.DataFrame:
    """A CSV whose `label_columns` are read as str, never as numbers; the file must exist."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {path}; point the competition root at the folder that "
            f"holds {path.name}"
        )
    table = pd.read_csv(path, dtype={column: LABEL_DTYPE for column in label_columns})
    missing = [column for column in label_columns if column not in table.columns]
    if missing:
        raise KeyError(
            f"{path}: column(s) {missing} missing (columns: {list(table.columns)}); is this "
            f"really the {what}?"
        )
    return table


def read_train_table(profile: CompetitionProfile, root: str | Path) -> pd.DataFrame:
    """The year's training table with labels as strings and secondary labels as lists.

    `primary_label` keeps numeric iNat ids and sonotypes exactly as written ("41778", not
    41778), `secondary_labels` holds list[str] parsed from the CSV's list-string. Other
    columns are as pandas reads them. A row without a primary label is an error: its class
    could never be matched to a submission column.
    """
    path = Path(root) / profile.metadata_file
    label, secondary = profile.label_column, profile.secondary_labels_column
    optional = [secondary] if _has_column(path, secondary) else []
    table = _read_labelled_csv(path, [label, *optional], f"{profile.slug} training table")
    if table[label].isna().any():
        row = int(table.index[table[label].isna()][0])
        raise ValueError(
            f"{path}: {int(table[label].isna().sum())} row(s) without a {label} (first: data "
            f"row {row + 1}); fix or drop them"
        )
    table[label] = table[label].astype(LABEL_DTYPE).str.strip()
    values = table[secondary] if optional else [None] * len(table)
    table[secondary] = [parse_label_list(v) for v in values]
    return table


def _has_column(path: Path, column: str) -> bool:
    """Whether the CSV at `path` has `column` (header only; a missing file reads as no)."""
    if not path.is_file():
        return False
    return column in pd.read_csv(path, nrows=0).columns


def class_order(profile: CompetitionProfile, root: str | Path) -> list[str]:
    """The submission's class columns in order, read where the year defines them.

    sample_submission.csv's columns after `row_id` (2023-2025), or taxonomy.csv's label rows
    in file order (2026). Strings always; duplicates are an error (two outputs, one column).
    """
    root = Path(root)
    if profile.class_order_from == "sample_submission":
        path = root / profile.sample_submission_file
        classes = [column for column in _csv_header(path) if column != "row_id"]
    else:
        column = profile.taxonomy_label_column
        path = root / profile.taxonomy_file
        table = _read_labelled_csv(path, [column], f"{profile.slug} taxonomy")
        classes = table[column].astype(LABEL_DTYPE).str.strip().tolist()
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ValueError(f"{path}: class(es) listed more than once: {repeated[:5]}")
    if not classes:
        raise ValueError(f"{path}: no classes found; is this the {profile.slug} file?")
    return classes


def _csv_header(path: Path) -> list[str]:
    """A CSV's column names as written (pandas would rename a repeated one to 'x.1')."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.name} not found at {path}; point the competition root at the folder that "
            f"holds it"
        )
    with path.open(newline="") as file:
        header = next(csv.reader(file), [])
    if "row_id" not in header:
        raise KeyError(f"{path}: no 'row_id' column (columns: {header[:5]}...)")
    return [column.strip() for column in header]


_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")
SOUNDSCAPE_LABEL_COLUMNS = ["filename", "start", "end", "primary_label"]


def time_seconds(value: str) -> int:
    """'HH:MM:SS' (or 'MM:SS', or plain seconds) -> whole seconds."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"not a time: {value!r} (expected HH:MM:SS)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return 3600 * hours + 60 * minutes + seconds


def _split_labels(value) -> list[str]:
    """'a;41778; 47158son16' -> ['a', '41778', '47158son16']; empty or NaN -> []."""
    if not isinstance(value, str):
        return []
    return [label.strip() for label in value.split(";") if label.strip()]


def read_soundscape_labels(path: str | Path) -> pd.DataFrame:
    """2026's labelled train soundscapes, one row per distinct segment.

    Columns: filename, start and end (int seconds), labels (sorted list[str], the union over
    the file's duplicate rows of the segment) and row_id (`<stem>_<end>`, the submission's
    shape). Rows in (filename, start) order. A bad time names the file and the row.
    """
    path = Path(path)
    table = _read_labelled_csv(
        path, SOUNDSCAPE_LABEL_COLUMNS, "labelled soundscape table (train_soundscapes_labels.csv)"
    )
    starts, ends = [], []
    for row, (start, end) in enumerate(zip(table["start"], table["end"], strict=True)):
        try:
            starts.append(time_seconds(start))
            ends.append(time_seconds(end))
        except ValueError as error:
            raise ValueError(f"{path}: data row {row + 1}: {error}") from None
        if ends[-1] <= starts[-1]:
            raise ValueError(f"{path}: data row {row + 1}: end {end} is not after start {start}")
    segments = pd.DataFrame(
        {
            "filename": table["filename"].astype(LABEL_DTYPE).str.strip(),
            "start": starts,
            "end": ends,
            "labels": [_split_labels(v) for v in table["primary_label"]],
        }
    )
    merged = segments.groupby(["filename", "start", "end"], sort=True, as_index=False).agg(
        labels=("labels", lambda rows: sorted({label for row in rows for label in row}))
    )
    stems = merged["filename"].map(lambda name: Path(name).stem)
    merged["row_id"] = [f"{s}_{e}" for s, e in zip(stems, merged["end"], strict=True)]
    return merged.astype({"start": int, "end": int}).reset_index(drop=True)
