"""Recording tables from the synthetic competition and its pre-training sources, and folds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.sources import (
    COLUMNS,
    SOURCES,
    class_list,
    make_folds,
    parse_label_list,
    read_birdclef2023,
    read_source,
    read_sources,
    split_fold,
)
from workbench.synthetic import SyntheticSpec, make_competition

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


def test_xeno_canto_halves_in_two_folders(root, tmp_path):
    """Kaggle ships Xeno-canto extended A-M and N-Z as two datasets."""
    whole = read_source("xeno-canto-extended", root / "xeno-canto-extended")
    first, second = tmp_path / "a-m", tmp_path / "n-z"
    for dest, half in ((first, "A-M"), (second, "N-Z")):
        dest.mkdir()
        shutil.copy(root / "xeno-canto-extended" / "train_extended.csv", dest)
        if (root / "xeno-canto-extended" / half).is_dir():
            shutil.copytree(root / "xeno-canto-extended" / half, dest / half)
    split = read_source("xeno-canto-extended", [first, second])
    assert split.drop(columns="path").equals(whole.drop(columns="path"))


def test_parse_label_list():
    assert parse_label_list("['a', 'b']") == ["a", "b"]
    assert parse_label_list("[]") == []
    assert parse_label_list(float("nan")) == []
    assert parse_label_list(["x"]) == ["x"]
    assert parse_label_list("abethr1") == ["abethr1"]


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
