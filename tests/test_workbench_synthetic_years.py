import dataclasses

import pandas as pd
import pytest
import soundfile as sf

from lib.competitions import (
    PROFILES,
    class_order,
    profile,
    read_soundscape_labels,
    read_train_table,
)
from lib.metric import score
from workbench.synthetic.years import YEAR_SPEC, make_year_competition, stems_like

# 2023's 10-minute files are slow to render: one test file there, two elsewhere.
SPECS = {"birdclef-2023": dataclasses.replace(YEAR_SPEC, n_soundscapes=1)}


@pytest.fixture(scope="module", params=list(PROFILES))
def year(request, tmp_path_factory):
    prof = PROFILES[request.param]
    root = tmp_path_factory.mktemp(prof.slug)
    spec = SPECS.get(prof.slug, YEAR_SPEC)
    return prof, spec, root, make_year_competition(root, prof, spec)


def test_files_have_the_years_names(year):
    prof, _, root, comp = year
    assert comp == root / prof.slug
    for name in (prof.metadata_file, prof.taxonomy_file, prof.sample_submission_file):
        assert (comp / name).is_file(), name
    assert (root / "solution.csv").is_file()
    unlabeled = prof.unlabeled_soundscapes_dir
    if unlabeled:
        assert len(list((comp / unlabeled).glob("*.ogg"))) == 2
    assert not {"unlabeled_soundscapes", "train_soundscapes"} - {unlabeled} & {
        p.name for p in comp.iterdir()
    }
    labels_file = prof.soundscape_labels_file
    assert (labels_file is not None) == (prof.slug == "birdclef-2026")
    if labels_file:
        assert (comp / labels_file).is_file()


def test_labels_survive_as_strings_and_match_the_submission(year):
    prof, _, root, comp = year
    table = read_train_table(prof, comp)
    classes = class_order(prof, comp)
    assert sorted(table["primary_label"].unique()) == sorted(classes)
    header = pd.read_csv(comp / prof.sample_submission_file, nrows=0).columns.tolist()
    assert header == ["row_id", *classes]
    assert pd.read_csv(root / "solution.csv", nrows=0).columns.tolist() == header
    if prof.collections:
        assert {"41778", "47158son16"} <= set(classes)
        assert set(table["collection"]) <= set(prof.collections)
        assert all(
            f.split("/")[1].startswith(c)
            for f, c in zip(table["filename"], table["collection"], strict=True)
        )
    assert all(isinstance(v, str) for v in table["primary_label"])
    assert all(isinstance(v, str) for row in table["secondary_labels"] for v in row)
    assert set().union(*table["secondary_labels"]) <= set(classes)
    every_file = {p.relative_to(comp / prof.train_audio_dir).as_posix()
                  for p in (comp / prof.train_audio_dir).rglob("*.ogg")}  # fmt: skip
    assert set(table["filename"]) == every_file


def test_test_files_have_the_years_length_and_solution_rows(year):
    prof, spec, root, comp = year
    files = sorted((comp / prof.test_dir).glob("*.ogg"))
    assert len(files) == spec.n_soundscapes
    assert files[-1].stem == prof.test_stem_example or prof.test_stem_example in {
        f.stem for f in files
    }
    solution = pd.read_csv(root / "solution.csv")
    assert len(solution) == prof.rows_per_test_file * len(files)
    for path in files:
        info = sf.info(str(path))
        assert info.duration == pytest.approx(prof.test_file_seconds, abs=0.01)
        rows = solution[solution["row_id"].str.rsplit("_", n=1).str[0] == path.stem]
        ends = [5 * k for k in range(1, prof.rows_per_test_file + 1)]
        assert rows["row_id"].tolist() == [f"{path.stem}_{end}" for end in ends]
    assert solution.drop(columns="row_id").to_numpy().sum() > 0
    perfect = solution.assign(**{c: solution[c] * 0.9 for c in solution.columns[1:]})
    assert score(prof.metric, solution, perfect) == pytest.approx(1.0)


def test_2026_segment_labels_merge_back_to_the_truth(tmp_path):
    prof = profile("birdclef-2026")
    comp = make_year_competition(tmp_path, prof, dataclasses.replace(YEAR_SPEC, n_soundscapes=1))
    raw = pd.read_csv(comp / prof.soundscape_labels_file, dtype=str)
    assert raw["start"].str.fullmatch(r"\d\d:\d\d:\d\d").all()
    assert raw.duplicated(["filename", "start", "end"]).sum() >= 2  # a split and an exact copy
    assert raw["primary_label"].str.contains(";").any()
    assert raw.duplicated().any()  # an exact repeat too
    merged = read_soundscape_labels(comp / prof.soundscape_labels_file)
    assert not merged.duplicated(["filename", "start", "end"]).any()
    union = (
        raw.assign(labels=raw["primary_label"].str.split(";"))
        .groupby(["filename", "start", "end"])["labels"]
        .sum()
    )
    assert [sorted(set(v)) for v in union] == merged["labels"].tolist()
    names = {p.name for p in (comp / prof.unlabeled_soundscapes_dir).glob("*.ogg")}
    assert set(merged["filename"]) <= names


def test_stems_keep_the_example_and_its_shape():
    stems = stems_like("BC2026_Test_0001_S05_20250227_010002", 4, 0, "test")
    assert stems[0] == "BC2026_Test_0001_S05_20250227_010002" and len(set(stems)) == 4
    for stem in stems[1:]:
        parts = stem.split("_")
        assert parts[0] == "BC2026" and parts[1] == "Test" and parts[3] == "S05"
        assert [len(p) for p in parts] == [6, 4, 4, 3, 8, 6]


def test_refuses_to_overwrite_unless_asked(tmp_path):
    prof = profile("birdclef-2025")
    small = dataclasses.replace(YEAR_SPEC, n_soundscapes=1)
    make_year_competition(tmp_path, prof, small)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_year_competition(tmp_path, prof, small)
    make_year_competition(tmp_path, prof, small, overwrite=True)
    assert len(list((tmp_path / prof.slug / prof.test_dir).glob("*.ogg"))) == 1
