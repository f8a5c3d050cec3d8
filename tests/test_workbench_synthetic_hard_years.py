"""The hard setting in each year's layout (years.make_hard_year_competition): the year's files,
names and string labels, its test file length and solution rows, and the hard test's content
kept, cut across files."""

import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lib.competitions import (
    PROFILES,
    class_order,
    read_soundscape_labels,
    read_train_table,
)
from workbench.synthetic.hard import HardSpec
from workbench.synthetic.hard_competition import make_hard_competition
from workbench.synthetic.years import (
    NON_BIRD_LABELS,
    make_hard_year_competition,
    year_labels,
)

# Small: 10 species, 2 test soundscapes of 120 s (2024: one 4-minute file, 2025-26: four).
SPEC = HardSpec(
    n_species=10, rare_species=1, lookalike_pairs=1, absent_species=1, pretrain_shared=2,
    pretrain_extra_species=1, unlisted_species=1, recordings_per_species=(6, 6),
    pretrain_recordings=(1, 1), n_soundscapes=2, soundscape_seconds=120.0,
    n_noise_soundscapes=1, noise_soundscape_seconds=10.0, recording_seconds=(5.0, 5.0),
)  # fmt: skip
YEARS = [slug for slug in PROFILES if slug != "birdclef-2023"]


@pytest.fixture(scope="module")
def hard_2023(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard-2023")
    make_hard_competition(root, SPEC)
    return pd.read_csv(root / "solution.csv", dtype={"row_id": str})


@pytest.fixture(scope="module", params=YEARS)
def year(request, tmp_path_factory):
    prof = PROFILES[request.param]
    root = tmp_path_factory.mktemp(prof.slug)
    return prof, root, make_hard_year_competition(root, prof, SPEC)


def shape(stem: str) -> str:
    return re.sub(r"\d", "0", stem)


def test_the_competition_is_in_the_years_layout_and_the_rest_stays(year):
    prof, root, comp = year
    assert comp == root / prof.slug and not (root / "birdclef-2023").exists()
    for name in (prof.metadata_file, prof.taxonomy_file, prof.sample_submission_file):
        assert (comp / name).is_file(), name
    if prof.taxonomy_file != "eBird_Taxonomy_v2021.csv":
        assert not (comp / "eBird_Taxonomy_v2021.csv").exists()
    for source in ("birdclef-2022", "xeno-canto-extended", "birdsong-recognition"):
        assert any((root / source).iterdir()), source  # the pre-training sources
    assert list((root / "birdclef-2021" / "train_soundscapes").glob("*.ogg"))  # noise bank
    assert not list(root.glob("_*"))  # no scratch folder left


def test_labels_are_the_years_strings_everywhere(year):
    prof, _, comp = year
    header = pd.read_csv(comp / prof.sample_submission_file, nrows=0, dtype=str).columns[1:]
    table = read_train_table(prof, comp)
    assert list(header) == class_order(prof, comp) == sorted(set(table[prof.label_column]))
    if prof.collections:
        assert set(NON_BIRD_LABELS) <= set(header)
        assert set(table["collection"]) <= set(prof.collections)
    audio = comp / prof.train_audio_dir
    assert all((audio / name).is_file() for name in table["filename"])
    assert {p.name for p in audio.iterdir()} == set(header)  # one folder per class


def test_test_files_have_the_years_length_names_and_solution_rows(year):
    prof, root, comp = year
    solution = pd.read_csv(root / "solution.csv", dtype={"row_id": str})
    header = pd.read_csv(comp / prof.sample_submission_file, nrows=0, dtype=str).columns
    assert list(solution.columns) == list(header)
    files = sorted((comp / prof.test_dir).glob("*.ogg"))
    assert len(files) == 2 * 120 // prof.test_file_seconds
    expected = []
    for path in files:
        info = sf.info(str(path))
        assert info.frames == prof.test_file_seconds * info.samplerate
        assert shape(path.stem) == shape(prof.test_stem_example)
        expected += [f"{path.stem}_{5 * k}" for k in range(1, prof.rows_per_test_file + 1)]
    assert solution["row_id"].tolist() == expected
    assert solution.iloc[:, 1:].to_numpy().sum() > 0


def test_the_hard_test_content_is_kept(year, hard_2023):
    """The year's solution, file after file, is the 2023 hard test's, window after window
    (the same calls; only the labels renamed and the files cut)."""
    prof, root, comp = year
    solution = pd.read_csv(root / "solution.csv", dtype={"row_id": str})
    renamed = year_labels(prof, hard_2023.columns[1:].tolist())
    before = hard_2023.rename(columns=renamed)[solution.columns[1:]].to_numpy()
    assert len(set(renamed.values()) & set(NON_BIRD_LABELS)) == (3 if prof.collections else 0)
    assert np.array_equal(solution.iloc[:, 1:].to_numpy(), before)


def test_unlabeled_soundscapes_and_2026_segments(year):
    prof, _, comp = year
    files = sorted((comp / prof.unlabeled_soundscapes_dir).glob("*.ogg"))
    assert files and all(shape(p.stem) == shape(prof.unlabeled_stem_example) for p in files)
    if prof.soundscape_labels_file:
        segments = read_soundscape_labels(comp / prof.soundscape_labels_file)
        assert set(segments["filename"]) <= {p.name for p in files}
        header = pd.read_csv(comp / prof.sample_submission_file, nrows=0, dtype=str).columns
        assert {label for labels in segments["labels"] for label in labels} <= set(header)
