"""A synthetic competition in the layout of any BirdCLEF year (2023-2026), driven by its profile.

Why: the notebooks must read each year's files through lib.competitions, and only a competition
written in that year's shape shows whether they do: `train.csv` with a `collection` column,
class labels that are numeric iNaturalist ids (`41778`) and a sonotype (`47158son16`) which a
careless reader turns into numbers, `taxonomy.csv`, unlabeled soundscapes, 2026's labelled
segments with duplicate rows, test files of the year's length and file-name shape.

The sounds come from the existing generators (`sounds`, `recordings`, `soundscapes`,
`soundscapes2021`), keyed by their own eBird-like codes; `year_labels` renames those codes to
the year's labels only in what is written. Small by default: five species, a few seconds per
recording, two test files of the year's length. `make_hard_year_competition` writes the hard
setting (workbench.synthetic.hard) in the year's layout: `to_year_layout` turns its 2023-layout
competition into the year's, keeping the hard test soundscapes' content.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import load_audio, write_audio
from lib.competitions import DEFAULT_COMPETITION, WINDOW_SECONDS, CompetitionProfile
from workbench.synthetic.hard import HardSpec
from workbench.synthetic.hard_competition import make_hard_competition, make_hard_test
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
# The hard setting's unlabeled soundscapes: more draws of its test (this test_seed offset),
# never the scored ones.
HARD_SPARE_SEED_OFFSET = 1000
HARD_SPARE_SOUNDSCAPES = 2
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


def relabel_train_table(
    profile: CompetitionProfile, frame: pd.DataFrame, labels: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A metadata table in the 2023 dialect (recordings.metadata_table) in the year's dialect,
    and each recording's old filename -> its new one.

    Labels renamed; with a collection column the file is `<label>/<collection><id>.ogg`, a
    non-XC recording has rating 0 (none) and no URL.
    """
    frame = frame.copy()
    old_names = frame["filename"].tolist()
    ids = frame["filename"].str.extract(r"XC(\d+)")[0].astype(int).tolist()
    codes = frame["primary_label"].tolist()
    frame["primary_label"] = [labels[c] for c in codes]
    frame["secondary_labels"] = [
        str([labels.get(c, c) for c in ast.literal_eval(s)]) for s in frame["secondary_labels"]
    ]
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
    moves = dict(zip(old_names, frame["filename"], strict=True))
    frame = frame.sort_values(["primary_label", "filename"], kind="stable")
    return frame.reset_index(drop=True), moves


def train_table(
    profile: CompetitionProfile, catalog: pd.DataFrame, labels: dict[str, str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The year's metadata table and each recording's audio path (catalog xc_id -> filename):
    the 2023 dialect (recordings.metadata_table), relabelled."""
    taxonomy = make_taxonomy(len(labels))
    frame = metadata_table(COMPETITION, catalog, taxonomy, YEAR_SPEC.sample_rate)
    table, moves = relabel_train_table(profile, frame, labels)
    paths = {int(re.search(r"XC(\d+)", old)[1]): new for old, new in moves.items()}
    return table, paths


def taxonomy_table(
    profile: CompetitionProfile, classes: list[str], ebird: pd.DataFrame | None = None
) -> pd.DataFrame:
    """eBird_Taxonomy_v2021.csv (2023-24, more species than used) or taxonomy.csv (2025-26,
    one row per class in the submission's column order); bird names from `ebird` (default:
    make_taxonomy's first species)."""
    if profile.taxonomy_file.startswith("eBird"):
        return make_taxonomy(len(classes) + 4) if ebird is None else ebird
    if ebird is None:
        ebird = make_taxonomy(len(classes))
    birds = ebird.set_index("SPECIES_CODE")
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


def cut_soundscapes(
    source: Path, solution: pd.DataFrame, seconds: int, out: Path, stems: list[str],
    sample_rate: int,
) -> pd.DataFrame:  # fmt: skip
    """The soundscapes in `source` (rows of `solution`, row_id `<stem>_<end>`) joined in name
    order and cut into len(stems) files of `seconds` in `out`; returns their solution rows.

    Why: the hard test soundscapes keep their content in any year's file length; a cut file
    may span two source soundscapes (2024's 4 minutes from 2-minute ones). Cut in name order,
    so the files in name order hold the soundscapes' windows in order.
    """
    stems = sorted(stems)
    waves, rows = [], []
    for path in sorted(source.glob("*.ogg")):
        wave = load_audio(path, sample_rate)
        mine = solution[solution["row_id"].str.rsplit("_", n=1).str[0] == path.stem]
        if len(wave) != len(mine) * WINDOW_SECONDS * sample_rate:
            raise ValueError(
                f"{path}: {len(wave) / sample_rate:.2f} s but {len(mine)} solution rows of "
                f"{WINDOW_SECONDS} s: use soundscape_seconds that are a multiple of "
                f"{WINDOW_SECONDS} (HardSpec)"
            )
        waves.append(wave)
        rows.append(mine)
    wave, truth = np.concatenate(waves), pd.concat(rows, ignore_index=True)
    per_file, samples = seconds // WINDOW_SECONDS, seconds * sample_rate
    if len(stems) * per_file > len(truth):
        raise ValueError(
            f"{source}: {len(truth) * WINDOW_SECONDS} s of soundscapes cannot fill "
            f"{len(stems)} files of {seconds} s: raise n_soundscapes or soundscape_seconds"
        )
    frames = []
    for k, stem in enumerate(stems):
        write_audio(out / f"{stem}.ogg", wave[k * samples : (k + 1) * samples], sample_rate)
        frame = truth.iloc[k * per_file : (k + 1) * per_file].copy()
        frame["row_id"] = [f"{stem}_{WINDOW_SECONDS * (i + 1)}" for i in range(per_file)]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def solution_segments(solution: pd.DataFrame) -> pd.DataFrame:
    """Solution rows as true segments (filename, start, end, labels as list)."""
    classes = solution.columns[1:]
    stems_ends = solution["row_id"].str.rsplit("_", n=1)
    rows = []
    for (stem, end), (_, row) in zip(stems_ends, solution.iterrows(), strict=True):
        found = sorted(c for c in classes if row[c])
        rows.append((f"{stem}.ogg", int(end) - WINDOW_SECONDS, int(end), found))
    return pd.DataFrame(rows, columns=["filename", "start", "end", "labels"])


def relayout_train(comp: Path, profile: CompetitionProfile, labels: dict[str, str]) -> None:
    """2023's train_metadata.csv and train_audio in comp, rewritten in the year's dialect."""
    old_table = comp / "train_metadata.csv"
    table, moves = relabel_train_table(profile, pd.read_csv(old_table), labels)
    audio = comp / profile.train_audio_dir
    for old, new in moves.items():
        if old != new:
            (audio / new).parent.mkdir(parents=True, exist_ok=True)
            (audio / old).rename(audio / new)
    for folder in sorted(audio.iterdir()):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    old_table.unlink()
    table.to_csv(comp / profile.metadata_file, index=False)


def relayout_test(
    root: Path, comp: Path, profile: CompetitionProfile, labels: dict[str, str], seed: int
) -> list[str]:
    """2023's test_soundscapes and root/solution.csv cut into the year's files; their stems."""
    solution = pd.read_csv(root / "solution.csv", dtype={"row_id": str}).rename(columns=labels)
    classes = sorted(labels.values())
    old = comp / "_2023_test"
    (comp / "test_soundscapes").rename(old)
    seconds = solution.shape[0] * WINDOW_SECONDS
    n = seconds // profile.test_file_seconds
    stems = stems_like(profile.test_stem_example, n, seed, "hard-test")
    sr = read_sample_rate(old)
    cut = cut_soundscapes(old, solution, profile.test_file_seconds, comp / profile.test_dir,
                          stems, sr)  # fmt: skip
    shutil.rmtree(old)
    cut[["row_id", *classes]].to_csv(root / "solution.csv", index=False)
    return stems


def read_sample_rate(folder: Path) -> int:
    """The sample rate of the first ogg in `folder` (the hard setting writes one rate)."""
    import soundfile as sf

    return int(sf.info(str(sorted(folder.glob("*.ogg"))[0])).samplerate)


def relayout_unlabeled(
    comp: Path, profile: CompetitionProfile, spare: Path, labels: dict[str, str], seed: int
) -> None:
    """The spare soundscapes (a make_hard_test root) as the year's unlabeled soundscapes and
    (2026) their labelled segments."""
    solution = pd.read_csv(spare / "solution.csv", dtype={"row_id": str}).rename(columns=labels)
    source = spare / COMPETITION.folder / "test_soundscapes"
    n = len(solution) * WINDOW_SECONDS // profile.test_file_seconds
    stems = stems_like(profile.unlabeled_stem_example, n, seed, "hard-unlabeled")
    out = comp / profile.unlabeled_soundscapes_dir
    cut = cut_soundscapes(source, solution, profile.test_file_seconds, out, stems,
                          read_sample_rate(source))  # fmt: skip
    if profile.soundscape_labels_file:
        labelled = soundscape_labels_csv(solution_segments(cut))
        labelled.to_csv(comp / profile.soundscape_labels_file, index=False)


def to_year_layout(
    root: Path, profile: CompetitionProfile, spare: Path | None = None, seed: int = 0
) -> Path:
    """Turn the competition in 2023's layout at root/birdclef-2023 (and root/solution.csv)
    into `profile`'s layout at root/<slug>; return that folder.

    Labels renamed everywhere (audio folders, tables, taxonomy, sample submission, solution),
    the test soundscapes cut into the year's file length and name shape, and where the year
    has them the unlabeled soundscapes (2026: with labelled segments) cut from `spare`, a
    make_hard_test root of test-like audio never scored. Other folders in root stay.
    """
    comp = root / profile.slug
    if comp.exists():
        comp.rmdir()  # claim_year_root's empty folder; anything in it is an error
    (root / COMPETITION.folder).rename(comp)
    sample = pd.read_csv(comp / "sample_submission.csv", nrows=0)
    labels = year_labels(profile, sample.columns[1:].tolist())
    classes = sorted(labels.values())
    relayout_train(comp, profile, labels)
    ebird_path = comp / "eBird_Taxonomy_v2021.csv"
    taxonomy = taxonomy_table(profile, classes, pd.read_csv(ebird_path))
    ebird_path.unlink()
    taxonomy.to_csv(comp / profile.taxonomy_file, index=False)
    if profile.unlabeled_soundscapes_dir:
        if spare is None:
            raise ValueError(
                f"to_year_layout: {profile.slug} has unlabeled soundscapes: pass `spare` "
                "(a make_hard_test root)"
            )
        relayout_unlabeled(comp, profile, spare, labels, seed)
    stems = sorted(relayout_test(root, comp, profile, labels, seed))
    (comp / "sample_submission.csv").unlink()
    solution = pd.read_csv(root / "solution.csv", dtype={"row_id": str})
    sample = solution[solution["row_id"].str.startswith(f"{stems[0]}_")].head(3)
    sample.assign(**dict.fromkeys(classes, 0.0)).to_csv(
        comp / profile.sample_submission_file, index=False
    )
    return comp


def make_hard_year_competition(
    root: str | Path,
    profile: CompetitionProfile,
    spec: HardSpec = HardSpec(),  # noqa: B008 (frozen: safe as a default)
    *,
    truth_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """The hard setting (make_hard_competition) with its competition in `profile`'s layout;
    the pre-training sources, the 2021 noise bank and the truth folder stay as they are
    (truth: 2023's soundscape names and codes). Returns root/<slug>."""
    root = Path(root)
    if profile.slug == DEFAULT_COMPETITION:
        return make_hard_competition(root, spec, truth_dir=truth_dir, overwrite=overwrite)
    claim_year_root(root, profile, overwrite)
    make_hard_competition(root, spec, truth_dir=truth_dir, overwrite=overwrite)
    spare = root / "_spare_soundscapes"
    shutil.rmtree(spare, ignore_errors=True)
    if profile.unlabeled_soundscapes_dir:
        spare_spec = dataclasses.replace(
            spec, test_seed=spec.test_seed + HARD_SPARE_SEED_OFFSET,
            n_soundscapes=HARD_SPARE_SOUNDSCAPES,
        )  # fmt: skip
        make_hard_test(spare, spare_spec)
    try:
        return to_year_layout(root, profile, spare if spare.exists() else None, spec.seed)
    finally:
        shutil.rmtree(spare, ignore_errors=True)
