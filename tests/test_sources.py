"""Recording tables from the synthetic competition and its pre-training sources, and folds."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.competitions import PROFILES, read_soundscape_labels
from lib.config import Config
from lib.dataset import make_targets
from lib.sources import (
    COLUMNS,
    SOURCES,
    class_list,
    make_folds,
    parse_label_list,
    read_birdclef2023,
    read_competition,
    read_source,
    read_sources,
    segment_rows,
    split_fold,
    training_classes,
)
from workbench.synthetic import SyntheticSpec, make_competition
from workbench.synthetic.years import YEAR_SPEC, make_year_competition

SPEC = SyntheticSpec(
    n_species=4,
    recordings_per_species=(6, 7),
    recording_seconds=(3.0, 6.0),
    n_soundscapes=1,
    soundscape_seconds=5.0,
    pretrain_extra_species=1,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_competition(root, SPEC)
    return root


def all_roots(root: Path) -> dict[str, Path]:
    return {name: root / name for name in SOURCES}


def copy_source(root: Path, name: str, dest: Path) -> Path:
    """A private copy of one source, to break without touching the shared fixture."""
    shutil.copytree(root / name, dest / name)
    return dest / name


def test_competition_table_has_the_common_columns(root):
    table = read_birdclef2023(root / "birdclef-2023")
    metadata = pd.read_csv(root / "birdclef-2023" / "train_metadata.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == len(metadata)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["path"])
    assert table["xc_id"].str.fullmatch(r"XC\d+").all()
    assert table["rating"].dtype == float
    assert all(isinstance(s, list) for s in table["secondary_labels"])
    assert (table["source"] == "birdclef-2023").all()
    # The primary label is the audio folder's name.
    folders = [Path(p).parent.name for p in table["path"]]
    assert folders == table["primary_label"].tolist()


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_gives_ebird_codes(root, name):
    table = read_source(name, root / name)
    species = set(SPEC.all_species)
    assert len(table) > 0 and list(table.columns) == COLUMNS
    assert set(table["primary_label"]) <= species
    secondary = {label for labels in table["secondary_labels"] for label in labels}
    assert secondary <= species  # 2020 dialect 'Genus species_Common Name' mapped to codes


def test_2020_secondary_names_are_mapped(root):
    raw = pd.read_csv(root / "birdsong-recognition" / "train.csv")
    table = read_source("birdsong-recognition", root / "birdsong-recognition")
    with_names = [parse_label_list(v) for v in raw["secondary_labels"]]
    assert any(with_names), "the synthetic 2020 table should hold secondary labels"
    assert [len(s) for s in table["secondary_labels"]] == [len(s) for s in with_names]


def test_union_is_deduplicated_by_xc_id_preferring_2023_then_newest(root):
    parts = {name: read_source(name, root / name) for name in SOURCES}
    union = read_sources(all_roots(root))
    every = pd.concat(parts.values(), ignore_index=True)
    assert len(every) > every["xc_id"].nunique(), "the generator makes duplicates on purpose"
    assert union["xc_id"].is_unique
    assert set(union["xc_id"]) == set(every["xc_id"])
    ids_2023 = set(parts["birdclef-2023"]["xc_id"])
    kept = union.set_index("xc_id")["source"]
    assert (kept[list(ids_2023)] == "birdclef-2023").all()
    order = list(SOURCES)
    for xc_id, group in every.groupby("xc_id"):
        best = min(group["source"], key=order.index)
        assert kept[xc_id] == best
    assert set(class_list(union)) == set(SPEC.all_species)


def test_class_list_is_the_submission_column_order(root):
    comp = root / "birdclef-2023"
    classes = class_list(read_birdclef2023(comp))
    columns = list(pd.read_csv(comp / "sample_submission.csv").columns[1:])
    assert classes == columns == sorted(columns)


def test_missing_column_names_it_and_the_source(root, tmp_path):
    comp = copy_source(root, "birdclef-2023", tmp_path)
    table = pd.read_csv(comp / "train_metadata.csv").drop(columns=["primary_label"])
    table.to_csv(comp / "train_metadata.csv", index=False)
    with pytest.raises(KeyError, match="birdclef-2023.*'primary_label'"):
        read_birdclef2023(comp)


def test_missing_table_or_audio_folder_names_it(root, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="birdclef-2022.*train_metadata.csv"):
        read_source("birdclef-2022", tmp_path / "empty")
    src = copy_source(root, "birdclef-2021", tmp_path)
    shutil.rmtree(src / "train_short_audio")
    with pytest.raises(FileNotFoundError, match="birdclef-2021.*train_short_audio"):
        read_source("birdclef-2021", src)
    with pytest.raises(KeyError, match="unknown source"):
        read_sources({"birdclef-2019": tmp_path})


def test_missing_files_are_warned_with_a_count_and_dropped(root, tmp_path):
    comp = copy_source(root, "birdclef-2023", tmp_path)
    full = read_birdclef2023(comp)
    gone = full["path"].iloc[[0, 3]].tolist()
    for path in gone:
        Path(path).unlink()
    with pytest.warns(UserWarning, match=rf"birdclef-2023: 2 of {len(full)} files .* missing"):
        table = read_birdclef2023(comp)
    assert len(table) == len(full) - 2
    assert not set(gone) & set(table["path"])


def split_xeno_canto(root: Path, dest: Path, layout: str) -> list[Path]:
    """Xeno-canto extended as Kaggle ships it: two datasets, A-M and N-Z. `layout`: each
    dataset's train_extended.csv lists its own half ("own") or both list both ("both")."""
    source = root / "xeno-canto-extended"
    table = pd.read_csv(source / "train_extended.csv")
    rel = [f"{code}/{name}" for code, name in zip(table.ebird_code, table.filename, strict=True)]
    in_first = np.array([(source / "A-M" / r).is_file() for r in rel])
    assert in_first.any() and not in_first.all(), "the fixture should fill both halves"
    roots = []
    for half, rows in (("A-M", in_first), ("N-Z", ~in_first)):
        folder = dest / f"xeno-canto-bird-recordings-extended-{half.lower()}"
        shutil.copytree(source / half, folder / half)
        (table[rows] if layout == "own" else table).to_csv(folder / "train_extended.csv",
                                                           index=False)  # fmt: skip
        roots.append(folder)
    return roots


@pytest.mark.parametrize("layout", ["own", "both"])
def test_xeno_canto_halves_in_two_datasets(root, tmp_path, layout):
    whole = read_source("xeno-canto-extended", root / "xeno-canto-extended")
    roots = split_xeno_canto(root, tmp_path, layout)
    split = read_source("xeno-canto-extended", roots)
    assert len(split) == len(whole) and split["xc_id"].is_unique
    key = ["xc_id", "primary_label"]
    assert (
        split.sort_values(key)
        .drop(columns=["path", "root"])
        .reset_index(drop=True)
        .equals(whole.sort_values(key).drop(columns=["path", "root"]).reset_index(drop=True))
    )
    assert all(Path(p).is_file() and Path(p).is_relative_to(tmp_path) for p in split["path"])
    # each file names the attached half it lies in: a broken half is judged on its own
    assert set(split["root"]) == {str(r) for r in roots}
    assert all(Path(p).is_relative_to(r) for p, r in zip(split["path"], split["root"], strict=True))
    assert set(whole["root"]) == {str(root / "xeno-canto-extended")}
    union = read_sources({**all_roots(root), "xeno-canto-extended": roots})
    reference = read_sources(all_roots(root))
    assert union["xc_id"].is_unique
    assert (
        union.set_index("xc_id")["source"]
        .sort_index()
        .equals(reference.set_index("xc_id")["source"].sort_index())
    )


def test_xeno_canto_one_half_attached_warns_about_the_other(root, tmp_path):
    first, _ = split_xeno_canto(root, tmp_path, "both")
    with pytest.warns(UserWarning, match="no N-Z folder is attached"):
        half = read_source("xeno-canto-extended", first)
    assert len(half) > 0
    assert all("/A-M/" in p for p in half["path"])


@pytest.mark.parametrize("name", list(SOURCES))
def test_broken_files_are_listed_not_decoded(root, tmp_path, name):
    """A 0-byte and a non-audio file stay in the table (the header pass skips them later),
    with the `source` column saying where they came from."""
    src = copy_source(root, name, tmp_path)
    full = read_source(name, src)
    empty, junk = Path(full["path"].iloc[0]), Path(full["path"].iloc[-1])
    empty.write_bytes(b"")
    junk.write_text("<html>404 not found</html>")
    table = read_source(name, src)
    assert table.equals(full)
    assert (table["source"] == name).all()


def test_parse_label_list():
    assert parse_label_list("['a', 'b']") == ["a", "b"]
    assert parse_label_list("[]") == []
    assert parse_label_list(float("nan")) == []
    assert parse_label_list(["x"]) == ["x"]
    assert parse_label_list("abethr1") == ["abethr1"]
    assert parse_label_list("41778") == ["41778"]  # a bare numeric label stays as written
    assert parse_label_list("['41778', 47158]") == ["41778", "47158"]


def fold_table(seed: int = 0) -> pd.DataFrame:
    """Many classes of 1-40 recordings (no audio needed for folds)."""
    rng = np.random.default_rng(seed)
    counts = {f"sp{k:02d}": int(n) for k, n in enumerate(rng.integers(1, 41, size=30))}
    counts.update({"rare1": 1, "rare5": 5, "six": 6})
    labels = [label for label, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"path": [f"/x/{i}.ogg" for i in range(len(labels))],
                         "primary_label": labels})  # fmt: skip


def test_folds_are_stratified_and_keep_minor_classes_in_training():
    table = make_folds(fold_table(), n_folds=5, minor_threshold=5, seed=42)
    counts = table["primary_label"].value_counts()
    assert table["fold"].dtype.kind == "i"
    for label, group in table.groupby("primary_label"):
        if counts[label] <= 5:
            assert (group["fold"] == -1).all(), label
        else:
            per_fold = group["fold"].value_counts().reindex(range(5), fill_value=0)
            assert per_fold.max() - per_fold.min() <= 1, (label, per_fold.tolist())
    for fold in range(5):
        train, valid = split_fold(table, fold)
        assert len(train) + len(valid) == len(table)
        assert not set(train["path"]) & set(valid["path"])
        assert {"rare1", "rare5"} <= set(train["primary_label"])
        assert not {"rare1", "rare5"} & set(valid["primary_label"])
        assert set(train["primary_label"]) == set(table["primary_label"])


def test_folds_are_deterministic_by_seed():
    table = fold_table()
    first = make_folds(table, seed=7)["fold"]
    assert first.equals(make_folds(table, seed=7)["fold"])
    assert not first.equals(make_folds(table, seed=8)["fold"])


def test_split_fold_errors_name_the_fix():
    with pytest.raises(KeyError, match="make_folds"):
        split_fold(fold_table(), 0)
    with pytest.raises(ValueError, match="fold 9"):
        split_fold(make_folds(fold_table()), 9)


# --- every BirdCLEF year through its profile --------------------------------------------------

YEAR_SPECS = {"birdclef-2023": dataclasses.replace(YEAR_SPEC, n_soundscapes=1)}  # 10-min files


@pytest.fixture(scope="module")
def years(tmp_path_factory) -> dict[str, Path]:
    """A synthetic competition in each year's layout: slug -> its competition folder."""
    made = {}
    for slug, prof in PROFILES.items():
        root = tmp_path_factory.mktemp(slug)
        made[slug] = make_year_competition(root, prof, YEAR_SPECS.get(slug, YEAR_SPEC))
    return made


@pytest.mark.parametrize("slug", list(PROFILES))
def test_each_year_reads_with_the_submissions_classes_and_string_labels(years, slug):
    prof, comp = PROFILES[slug], years[slug]
    table = read_competition(prof, comp)
    classes = training_classes(prof, comp, table)
    header = pd.read_csv(comp / prof.sample_submission_file, nrows=0).columns.tolist()
    assert classes == header[1:]
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert all(isinstance(v, str) for v in table["primary_label"])
    assert set(table["primary_label"]) <= set(classes)
    recordings = table[table["source"] == slug]
    assert len(recordings) == len(pd.read_csv(comp / prof.metadata_file))
    assert all(Path(p).is_file() and f"/{prof.train_audio_dir}/" in p for p in recordings["path"])
    assert recordings["recording_id"].ne("").all() and recordings["recording_id"].is_unique
    if prof.collections:  # 2025-26: iNat ids and a sonotype, never turned into numbers
        assert {"1139490", "41778", "47158son16"} <= set(recordings["primary_label"])
        inat = recordings[recordings["path"].str.contains("/iNat")]
        assert len(inat) and inat["xc_id"].eq("").all()
        assert inat["recording_id"].str.fullmatch(r"iNat\d+").all()
        secondary = {v for row in recordings["secondary_labels"] for v in row}
        assert all(isinstance(v, str) for v in secondary)
    has_segments = prof.soundscape_labels_file is not None
    assert (table["source"] == f"{slug}-soundscapes").any() == has_segments


def test_class_order_is_the_submissions_not_sorted_and_keeps_species_without_recordings(
    years, tmp_path
):
    prof = PROFILES["birdclef-2025"]
    comp = tmp_path / prof.slug
    shutil.copytree(years[prof.slug], comp)
    sample = pd.read_csv(comp / prof.sample_submission_file, dtype={"row_id": str})
    reordered = ["row_id", "99999", *reversed(sample.columns[1:].tolist())]
    sample.assign(**{"99999": 0.0})[reordered].to_csv(comp / prof.sample_submission_file,
                                                       index=False)  # fmt: skip
    table = read_competition(prof, comp)
    classes = training_classes(prof, comp, table)
    assert classes == reordered[1:] and classes != sorted(classes)
    targets = make_targets(table, classes, Config())
    assert targets[:, 0].sum() == 0 and targets.shape[1] == len(classes)


def test_2023_reads_the_same_through_its_profile(root):
    comp = root / "birdclef-2023"
    by_profile = read_competition(PROFILES["birdclef-2023"], comp)
    assert by_profile.equals(read_birdclef2023(comp))
    assert by_profile["recording_id"].equals(by_profile["xc_id"])
    assert "offset" not in by_profile.columns  # no segments: the 2023 table as before


def test_2026_segments_are_rows_at_their_offsets_folded_whole_per_file(years):
    prof = PROFILES["birdclef-2026"]
    comp = years[prof.slug]
    table = read_competition(prof, comp)
    segments = table[table["source"] == "birdclef-2026-soundscapes"]
    truth = read_soundscape_labels(comp / prof.soundscape_labels_file)
    assert len(segments) == len(truth)  # duplicate rows merged
    assert segments["duration"].eq(5.0).all()
    assert segments["offset"].tolist() == truth["start"].astype(float).tolist()
    assert [[p, *s] for p, s in zip(segments["primary_label"], segments["secondary_labels"],
                                    strict=True)] == truth["labels"].tolist()  # fmt: skip
    folded = make_folds(table, n_folds=2, minor_threshold=0, seed=1)
    per_file = folded[segment_rows(folded)].groupby("path")["fold"].nunique()
    assert len(per_file) == 2 and (per_file == 1).all()  # no file in two folds
    assert set(folded.loc[segment_rows(folded), "fold"]) == {0, 1}  # two files, two folds
    recordings = folded[~segment_rows(folded)].reset_index(drop=True)
    alone = make_folds(table[table["source"] == prof.slug], n_folds=2, minor_threshold=0, seed=1)
    assert recordings["fold"].tolist() == alone["fold"].tolist()  # recordings folded as before


def test_year_slugs_are_pretraining_sources_deduplicated_newest_first(years):
    roots = {slug: years[slug] for slug in ("birdclef-2025", "birdclef-2024", "birdclef-2023")}
    union = read_sources(roots)
    every = pd.concat([read_source(slug, path) for slug, path in roots.items()])
    assert union["recording_id"].is_unique and len(union) < len(every)  # years share some
    assert set(union["recording_id"]) == set(every["recording_id"])
    kept = union.set_index("recording_id")["source"]
    for recording, group in every.groupby("recording_id"):
        assert kept[recording] == max(group["source"])  # the newest year's copy
    with pytest.raises(KeyError, match="birdclef-2030"):
        read_sources({"birdclef-2030": years["birdclef-2025"]})
