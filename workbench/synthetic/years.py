"""A synthetic competition in the layout of any BirdCLEF year (2023-2026), driven by its profile.

Why: the notebooks must read each year's files through lib.competitions, and only a competition
written in that year's shape shows whether they do: `train.csv` with a `collection` column,
class labels that are numeric iNaturalist ids (`41778`) and a sonotype (`47158son16`) which a
careless reader turns into numbers, `taxonomy.csv`, unlabeled soundscapes, 2026's labelled
segments with duplicate rows, test files of the year's length and file-name shape.

The sounds come from the existing generators (`sounds`, `recordings`, `soundscapes`,
`soundscapes2021`), keyed by their own eBird-like codes; `year_labels` renames those codes to
the year's labels only in what is written. Small by default: five species, a few seconds per
recording, two test files of the year's length.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import write_audio
from lib.competitions import WINDOW_SECONDS, CompetitionProfile
from workbench.synthetic.recordings import COMPETITION, make_catalog, metadata_table
from workbench.synthetic.sounds import render_recording
from workbench.synthetic.soundscapes import (
    plan_soundscapes,
    render_soundscape,
    soundscape_labels,
    soundscape_windows,
)
from workbench.synthetic.soundscapes2021 import plan_windows
from workbench.synthetic.spec import SyntheticSpec, make_taxonomy, species_codes, stream

YEAR_SPEC = SyntheticSpec(
    n_species=5,
    recordings_per_species=(2, 3),
    recording_seconds=(3.0, 5.0),
    n_soundscapes=2,
    minor_species=0,
    with_pretrain_sources=False,
)
# With a `collection` column (2025-26) the last generator species become non-birds:
# two iNaturalist taxon ids (amphibians) and an insect sonotype, as the real class lists hold.
NON_BIRD_LABELS = ("1139490", "41778", "47158son16")
UNLABELED_FILES = 2
UNLABELED_SECONDS = 20.0
_UNLABELED_INDEX = 2024_000  # render/plan streams of unlabeled soundscapes: never the test's
# 2025 train.csv column order (from public notebooks; unconfirmed), 2026 assumed the same.
TRAIN_CSV_COLUMNS = [
    "primary_label", "secondary_labels", "type", "filename", "collection", "rating", "url",
    "latitude", "longitude", "scientific_name", "common_name", "author", "license",
]  # fmt: skip
TAXONOMY_CSV_COLUMNS = [
    "primary_label", "inat_taxon_id", "scientific_name", "common_name", "class_name",
]  # unconfirmed beyond primary_label, scientific_name and class_name  # fmt: skip


def year_labels(profile: CompetitionProfile, codes: list[str]) -> dict[str, str]:
    """Generator code -> the year's class label (identity before 2025)."""
    if not profile.collections:
        return {code: code for code in codes}
    if len(codes) <= len(NON_BIRD_LABELS):
        raise ValueError(
            f"{profile.slug}: need more than {len(NON_BIRD_LABELS)} species (birds and the "
            f"non-bird labels {NON_BIRD_LABELS}); got {len(codes)}: raise n_species"
        )
    birds = codes[: -len(NON_BIRD_LABELS)]
    return {**{c: c for c in birds}, **dict(zip(codes[len(birds) :], NON_BIRD_LABELS, strict=True))}


def class_name(label: str) -> str:
    """Taxonomic class of a label: iNat ids are amphibians here, sonotypes insects."""
    if label.isdigit():
        return "Amphibia"
    return "Insecta" if "son" in label else "Aves"


def non_bird_names(label: str) -> tuple[str, str]:
    """(scientific, common) name of a non-bird class, the same in train.csv and taxonomy.csv."""
    return f"Synthetica {label}", f"Synthetic {class_name(label).lower()} {label}"


def collection_of(label: str, index: int, profile: CompetitionProfile) -> str:
    """Where a recording came from: birds from Xeno-canto (every third from iNaturalist),
    iNat ids from iNaturalist, sonotypes from CSA when the year has it."""
    if class_name(label) == "Insecta" and "CSA" in profile.collections:
        return "CSA"
    if class_name(label) == "Aves" and index % 3:
        return "XC"
    return "iNat"


def stems_like(example: str, n: int, seed: int, purpose: str) -> list[str]:
    """`example` and n - 1 more names of its shape: each digit run not glued to letters
    (`BC2026`, `S05` stay) gets random digits of the same length."""
    rng = stream(seed, "stems", purpose)
    stems = [example]
    while len(stems) < n:
        stem = re.sub(
            r"(?<![A-Za-z0-9])\d+",
            lambda m: "".join(str(d) for d in rng.integers(0, 10, len(m.group()))),
            example,
        )
        if stem not in stems:
            stems.append(stem)
    return stems


def hms(seconds: int) -> str:
    """5 -> '00:00:05': 2026's segment times."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def claim_year_root(root: Path, profile: CompetitionProfile, overwrite: bool) -> Path:
    """root/<slug>, empty: an old competition there is replaced only with overwrite."""
    comp, solution = root / profile.slug, root / "solution.csv"
    busy = [p for p in (comp, solution) if p.is_file() or (p.is_dir() and any(p.iterdir()))]
    if busy and not overwrite:
        raise FileExistsError(
            f"make_year_competition: {', '.join(map(str, busy))} already hold(s) files; pass "
            "overwrite=True to replace the synthetic competition there"
        )
    for path in busy:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    comp.mkdir(parents=True, exist_ok=True)
    return comp


def train_table(
    profile: CompetitionProfile, catalog: pd.DataFrame, labels: dict[str, str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The year's metadata table and each recording's audio path (catalog xc_id -> filename).

    Built from the 2023 dialect (recordings.metadata_table), then relabelled; with a collection
    column the file is `<label>/<collection><id>.ogg`, a non-XC recording has rating 0 (none).
    """
    taxonomy = make_taxonomy(len(labels))
    frame = metadata_table(COMPETITION, catalog, taxonomy, YEAR_SPEC.sample_rate)
    ids = frame["filename"].str.extract(r"XC(\d+)")[0].astype(int).tolist()
    codes = frame["primary_label"].tolist()
    frame["primary_label"] = [labels[c] for c in codes]
    secondary = dict(zip(catalog.xc_id, catalog.secondary, strict=True))
    frame["secondary_labels"] = [str([labels[c] for c in secondary[i]]) for i in ids]
    if profile.collections:
        collections = [
            collection_of(labels[c], i, profile) for i, c in zip(ids, codes, strict=True)
        ]
        frame["collection"] = collections
        frame["filename"] = [
            f"{labels[c]}/{col}{i}.ogg" for c, col, i in zip(codes, collections, ids, strict=True)
        ]
        xc = frame["collection"] == "XC"
        frame["rating"] = frame["rating"].where(xc, 0.0)
        frame["url"] = frame["url"].where(xc, "")
        non_bird = frame["primary_label"].isin(NON_BIRD_LABELS)
        names = [non_bird_names(label) for label in frame.loc[non_bird, "primary_label"]]
        frame.loc[non_bird, "scientific_name"] = [sci for sci, _ in names]
        frame.loc[non_bird, "common_name"] = [common for _, common in names]
        frame = frame[TRAIN_CSV_COLUMNS]
    paths = dict(zip(ids, frame["filename"], strict=True))
    frame = frame.sort_values(["primary_label", "filename"], kind="stable")
    return frame.reset_index(drop=True), paths


def taxonomy_table(profile: CompetitionProfile, classes: list[str]) -> pd.DataFrame:
    """eBird_Taxonomy_v2021.csv (2023-24, more species than used) or taxonomy.csv (2025-26,
    one row per class in the submission's column order)."""
    if profile.taxonomy_file.startswith("eBird"):
        return make_taxonomy(len(classes) + 4)
    birds = make_taxonomy(len(classes)).set_index("SPECIES_CODE")
    rows = []
    for k, label in enumerate(classes):
        bird = label in birds.index
        rows.append({
            "primary_label": label,
            "inat_taxon_id": int(label) if label.isdigit() else 500000 + 17 * k,
            "scientific_name": birds.SCI_NAME[label] if bird else non_bird_names(label)[0],
            "common_name": birds.PRIMARY_COM_NAME[label] if bird else non_bird_names(label)[1],
            "class_name": class_name(label),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=TAXONOMY_CSV_COLUMNS)


def write_recordings(
    comp: Path, profile: CompetitionProfile, spec: SyntheticSpec, catalog: pd.DataFrame,
    paths: dict[int, str],
) -> None:  # fmt: skip
    """Each catalog recording rendered by the generator, written at its year's path."""
    for row in catalog.itertuples(index=False):
        wave = render_recording(row.primary_label, row.secondary, row.seconds, row.xc_id, spec)
        write_audio(comp / profile.train_audio_dir / paths[row.xc_id], wave, spec.sample_rate)


def write_test(
    comp: Path, profile: CompetitionProfile, spec: SyntheticSpec, labels: dict[str, str],
    classes: list[str],
) -> tuple[list[str], pd.DataFrame]:  # fmt: skip
    """The hidden test files (the year's length and name shape) and their solution.

    Solution: row_id `<stem>_<end s>`, then 0/1 per class in `classes` order; rows by stem.
    """
    seconds = float(profile.test_file_seconds)
    test_spec = dataclasses.replace(spec, soundscape_seconds=seconds)
    codes = species_codes(spec.n_species)
    stems = stems_like(profile.test_stem_example, spec.n_soundscapes, spec.seed, "test")
    frames = []
    for index, (stem, plan) in enumerate(zip(stems, plan_soundscapes(test_spec), strict=True)):
        wave, events = render_soundscape(plan, index, test_spec)
        write_audio(comp / profile.test_dir / f"{stem}.ogg", wave, spec.sample_rate)
        truth = soundscape_labels(events, seconds, codes, spec.sample_rate)
        frame = pd.DataFrame(truth, columns=[labels[c] for c in codes])[classes]
        ends = WINDOW_SECONDS * np.arange(1, len(frame) + 1)
        frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
        frames.append(frame)
    order = sorted(range(len(stems)), key=lambda k: stems[k])
    return stems, pd.concat([frames[k] for k in order], ignore_index=True)


def write_unlabeled(
    comp: Path, profile: CompetitionProfile, spec: SyntheticSpec, labels: dict[str, str]
) -> pd.DataFrame:
    """UNLABELED_FILES short soundscapes in the year's folder and name shape; returns their
    true segments (filename, start, end, labels as list) for the labelled-segments table."""
    seconds = UNLABELED_SECONDS
    sub_spec = dataclasses.replace(spec, soundscape_seconds=seconds)
    codes, n_windows = species_codes(spec.n_species), soundscape_windows(seconds)
    stems = stems_like(profile.unlabeled_stem_example, UNLABELED_FILES, spec.seed, "unlabeled")
    rows = []
    for index, stem in enumerate(stems):
        plan = plan_windows(sub_spec, _UNLABELED_INDEX + index, n_windows)
        wave, events = render_soundscape(plan, _UNLABELED_INDEX + index, sub_spec)
        write_audio(
            comp / profile.unlabeled_soundscapes_dir / f"{stem}.ogg", wave, spec.sample_rate
        )
        truth = soundscape_labels(events, seconds, codes, spec.sample_rate)
        for window, present in enumerate(truth):
            found = sorted(labels[c] for c, on in zip(codes, present, strict=True) if on)
            start = WINDOW_SECONDS * window
            rows.append((f"{stem}.ogg", start, start + WINDOW_SECONDS, found))
    return pd.DataFrame(rows, columns=["filename", "start", "end", "labels"])


def soundscape_labels_csv(segments: pd.DataFrame) -> pd.DataFrame:
    """2026's train_soundscapes_labels.csv from true segments: the labelled ones, `HH:MM:SS`
    times, `;`-joined labels; the first multi-label segment is repeated with part of its
    labels and the first row exactly (the real file repeats segments; a reader merges them)."""
    labelled = segments[segments["labels"].map(len) > 0].reset_index(drop=True)
    rows, split = [], False
    for seg in labelled.itertuples(index=False):
        times = (seg.filename, hms(seg.start), hms(seg.end))
        parts = [seg.labels]
        if len(seg.labels) > 1 and not split:
            parts, split = [seg.labels, seg.labels[1:]], True
        rows += [(*times, ";".join(part)) for part in parts]
    rows.append(rows[0])  # an exact duplicate as well
    return pd.DataFrame(rows, columns=["filename", "start", "end", "primary_label"])


def make_year_competition(
    root: str | Path,
    profile: CompetitionProfile,
    spec: SyntheticSpec = YEAR_SPEC,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic competition in `profile`'s layout into root/<slug>; return that folder.

    Writes the metadata table, train_audio, the taxonomy, the unlabeled soundscapes and (2026)
    the labelled-segments table where the profile has them, the test files and
    sample_submission.csv; the hidden ground truth goes to root/solution.csv. Raises
    FileExistsError when either already holds files, unless overwrite=True.
    """
    if spec.with_pretrain_sources:
        raise ValueError(
            "make_year_competition writes the competition only: pass a spec with "
            "with_pretrain_sources=False (pre-training sources come from make_competition)"
        )
    root = Path(root)
    comp = claim_year_root(root, profile, overwrite)
    labels = year_labels(profile, species_codes(spec.n_species))
    classes = sorted(labels.values())  # sample_submission's order; taxonomy.csv rows too
    catalog = make_catalog(spec)
    table, paths = train_table(profile, catalog, labels)
    table.to_csv(comp / profile.metadata_file, index=False)
    write_recordings(comp, profile, spec, catalog, paths)
    taxonomy_table(profile, classes).to_csv(comp / profile.taxonomy_file, index=False)
    if profile.unlabeled_soundscapes_dir:
        segments = write_unlabeled(comp, profile, spec, labels)
        if profile.soundscape_labels_file:
            labelled = soundscape_labels_csv(segments)
            labelled.to_csv(comp / profile.soundscape_labels_file, index=False)
    stems, solution = write_test(comp, profile, spec, labels, classes)
    solution.to_csv(root / "solution.csv", index=False)
    sample = solution[solution["row_id"].str.startswith(f"{stems[0]}_")].head(3)
    sample.assign(**dict.fromkeys(classes, 0.0)).to_csv(
        comp / profile.sample_submission_file, index=False
    )
    return comp
