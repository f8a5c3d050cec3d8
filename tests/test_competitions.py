import dataclasses

import pandas as pd
import pytest

from lib.competitions import (
    DEFAULT_COMPETITION,
    PROFILES,
    class_order,
    profile,
    read_soundscape_labels,
    read_train_table,
    time_seconds,
)
from lib.config import Config
from lib.metric import METRICS
from lib.sources import SOURCES

YEARS = ["birdclef-2023", "birdclef-2024", "birdclef-2025", "birdclef-2026"]


def test_table_holds_each_year_with_its_test_shape_and_limits():
    assert list(PROFILES) == YEARS and DEFAULT_COMPETITION == "birdclef-2023"
    rows = {slug: PROFILES[slug].rows_per_test_file for slug in YEARS}
    assert rows == {"birdclef-2023": 120, "birdclef-2024": 48, "birdclef-2025": 12,
                    "birdclef-2026": 12}  # fmt: skip
    limits = [PROFILES[slug].cpu_limit_minutes for slug in YEARS]
    assert limits == [120, 120, 90, 90]
    assert [PROFILES[slug].metric for slug in YEARS] == ["padded_cmap", *["roc_auc"] * 3]
    assert all(p.metric in METRICS for p in PROFILES.values())
    assert [p.metadata_file for p in PROFILES.values()] == [
        "train_metadata.csv", "train_metadata.csv", "train.csv", "train.csv"
    ]  # fmt: skip
    assert [p.unlabeled_soundscapes_dir for p in PROFILES.values()] == [
        None, "unlabeled_soundscapes", "train_soundscapes", "train_soundscapes"
    ]  # fmt: skip
    assert PROFILES["birdclef-2026"].soundscape_labels_file == "train_soundscapes_labels.csv"
    assert PROFILES["birdclef-2026"].class_order_from == "taxonomy"


def test_2023_budget_is_the_configured_recipe_budget():
    """The profile's budget must agree with what the inference notebook uses today."""
    assert profile("birdclef-2023").inference_budget_minutes == Config().time_budget_minutes
    assert profile("birdclef-2025").inference_budget_minutes < 90


def test_pretrain_sources_are_known_names_and_each_years_predecessors():
    competitions = set(PROFILES)
    for slug, prof in PROFILES.items():
        unknown = set(prof.pretrain_sources) - set(SOURCES) - competitions
        assert not unknown, f"{slug}: {unknown}"
        earlier = [s for s in YEARS if s < slug]
        assert [s for s in prof.pretrain_sources if s in competitions] == earlier[::-1]
        assert len(set(prof.pretrain_sources)) == len(prof.pretrain_sources)
    assert set(PROFILES["birdclef-2023"].pretrain_sources) == set(SOURCES) - {"birdclef-2023"}


def test_unknown_slug_lists_the_known_ones():
    with pytest.raises(KeyError, match="birdclef-2023, birdclef-2024, birdclef-2025"):
        profile("birdclef-2027")


def test_a_broken_profile_is_rejected_naming_the_field():
    with pytest.raises(ValueError, match="metric must be one of"):
        dataclasses.replace(PROFILES["birdclef-2024"], metric="auc")
    with pytest.raises(ValueError, match="test_file_seconds"):
        dataclasses.replace(PROFILES["birdclef-2024"], test_file_seconds=62)


def write_train_csv(root, name="train.csv"):
    pd.DataFrame({
        "primary_label": ["41778", "47158son16", "abethr1", "00123"],
        "secondary_labels": ["['abethr1']", "[]", "['41778', '47158son16']", None],
        "collection": ["iNat", "CSA", "XC", "iNat"],
        "filename": ["41778/iNat1.ogg", "47158son16/CSA2.ogg", "abethr1/XC3.ogg",
                     "00123/iNat4.ogg"],
        "rating": [0.0, 0.0, 4.5, 0.0],
    }).to_csv(root / name, index=False)  # fmt: skip


def test_read_train_table_keeps_numeric_labels_as_strings(tmp_path):
    write_train_csv(tmp_path)
    table = read_train_table(profile("birdclef-2025"), tmp_path)
    assert table["primary_label"].tolist() == ["41778", "47158son16", "abethr1", "00123"]
    assert table["secondary_labels"].tolist() == [
        ["abethr1"], [], ["41778", "47158son16"], []
    ]  # fmt: skip
    assert table["rating"].tolist() == [0.0, 0.0, 4.5, 0.0]


def test_read_train_table_names_a_missing_file_or_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.csv"):
        read_train_table(profile("birdclef-2025"), tmp_path)
    write_train_csv(tmp_path, "train_metadata.csv")
    pd.read_csv(tmp_path / "train_metadata.csv").rename(columns={"primary_label": "label"}).to_csv(
        tmp_path / "train_metadata.csv", index=False
    )
    with pytest.raises(KeyError, match="primary_label"):
        read_train_table(profile("birdclef-2024"), tmp_path)


def test_class_order_from_sample_submission_or_taxonomy(tmp_path):
    header = "row_id,00123,41778,47158son16,abethr1\nx_5,0,0,0,0\n"
    (tmp_path / "sample_submission.csv").write_text(header)
    pd.DataFrame({"primary_label": ["abethr1", "41778", "00123"], "class_name": "Aves"}).to_csv(
        tmp_path / "taxonomy.csv", index=False
    )
    assert class_order(profile("birdclef-2025"), tmp_path) == [
        "00123", "41778", "47158son16", "abethr1"
    ]  # fmt: skip
    assert class_order(profile("birdclef-2026"), tmp_path) == ["abethr1", "41778", "00123"]


def test_class_order_rejects_a_repeated_class(tmp_path):
    (tmp_path / "sample_submission.csv").write_text("row_id,a,b,a\n")
    with pytest.raises(ValueError, match="more than once: \\['a'\\]"):
        class_order(profile("birdclef-2024"), tmp_path)


@pytest.mark.parametrize(
    "text, seconds", [("00:00:05", 5), ("00:01:00", 60), ("01:00:10", 3610), ("7:05", 425),
                      ("15", 15)]
)  # fmt: skip
def test_time_seconds(text, seconds):
    assert time_seconds(text) == seconds


def test_read_soundscape_labels_merges_duplicates(tmp_path):
    path = tmp_path / "train_soundscapes_labels.csv"
    path.write_text(
        "filename,start,end,primary_label\n"
        "BC2026_Train_0001_S01_20250101_000000.ogg,00:00:05,00:00:10,41778;abethr1\n"
        "BC2026_Train_0001_S01_20250101_000000.ogg,00:00:00,00:00:05,47158son16\n"
        "BC2026_Train_0001_S01_20250101_000000.ogg,00:00:05,00:00:10,abethr1;00123\n"
        "BC2026_Train_0002_S02_20250102_000000.ogg,00:00:55,00:01:00,41778\n"
    )
    table = read_soundscape_labels(path)
    assert table.columns.tolist() == ["filename", "start", "end", "labels", "row_id"]
    assert table["start"].tolist() == [0, 5, 55] and table["end"].tolist() == [5, 10, 60]
    assert table["labels"].tolist() == [["47158son16"], ["00123", "41778", "abethr1"], ["41778"]]
    assert table["row_id"].tolist() == [
        "BC2026_Train_0001_S01_20250101_000000_5", "BC2026_Train_0001_S01_20250101_000000_10",
        "BC2026_Train_0002_S02_20250102_000000_60",
    ]  # fmt: skip


def test_read_soundscape_labels_names_a_bad_time(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,start,end,primary_label\na.ogg,00:00:05,5s,x\n")
    with pytest.raises(ValueError, match="labels.csv: data row 1: not a time: '5s'"):
        read_soundscape_labels(path)
    path.write_text("filename,start,end,primary_label\na.ogg,00:00:10,00:00:05,x\n")
    with pytest.raises(ValueError, match="end 00:00:05 is not after start"):
        read_soundscape_labels(path)


def test_all_numeric_labels_stay_strings(tmp_path):
    """A table (or taxonomy) of iNat ids only is where pandas would otherwise read integers."""
    pd.DataFrame({"primary_label": ["41778", "00123"], "secondary_labels": ["[41778]", "[]"],
                  "filename": ["41778/iNat1.ogg", "00123/iNat2.ogg"]}).to_csv(
        tmp_path / "train.csv", index=False)  # fmt: skip
    table = read_train_table(profile("birdclef-2026"), tmp_path)
    assert table["primary_label"].tolist() == ["41778", "00123"]
    assert table["secondary_labels"].tolist() == [["41778"], []]
    pd.DataFrame({"primary_label": ["41778", "00123"]}).to_csv(tmp_path / "taxonomy.csv")
    assert class_order(profile("birdclef-2026"), tmp_path) == ["41778", "00123"]
