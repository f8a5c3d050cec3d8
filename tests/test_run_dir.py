"""lib.run_dir without training: the run's identity files and what a resume may change, the fold
table, the pre-training table, row ids, fold folders, the run summary and its atomic writes.

The layout a real run leaves is checked in tests/test_train_folds.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lib.config import Config
from lib.distributed import DistInfo
from lib.run_dir import (
    fold_dirs,
    prepare_folds,
    prepare_run_dir,
    pretraining_table,
    summarize_run,
    with_row_ids,
    write_csv_atomic,
    write_json_atomic,
)

MAIN = DistInfo()


def recordings(n: int = 8) -> pd.DataFrame:
    labels = ["a", "b"] * (n // 2)
    return pd.DataFrame(
        {
            "path": [f"/data/{label}/XC{k}.ogg" for k, label in enumerate(labels)],
            "primary_label": labels,
            "secondary_labels": [[] for _ in labels],
            "xc_id": [f"XC{k}" for k in range(n)],
        }
    )


def test_row_ids_are_unique_and_readable():
    table = pd.DataFrame({"path": ["/a/abethr1/XC1.ogg", "/b/abethr1/XC1.mp3", "/a/x/XC2.ogg"]})
    ids = with_row_ids(table)["row_id"].tolist()
    assert ids[2] == "x/XC2" and len(set(ids)) == 3


def test_atomic_writes_leave_only_the_target(tmp_path):
    write_json_atomic(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    write_csv_atomic(tmp_path / "a" / "t.csv", pd.DataFrame({"x": [1, 2]}))
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"a": [1, 2], "b": 1}
    assert pd.read_csv(tmp_path / "a" / "t.csv")["x"].tolist() == [1, 2]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["t.csv", "x.json"]


def test_resume_may_change_only_what_does_not_change_training(tmp_path):
    config = Config(epochs=3)
    prepare_run_dir(tmp_path, config, ["a", "b"], MAIN)
    assert Config.load(tmp_path / "config.json") == config
    prepare_run_dir(tmp_path, config.replace(num_workers=0, folds=(1,)), ["a", "b"], MAIN)
    with pytest.raises(ValueError, match="epochs: 3 -> 4"):
        prepare_run_dir(tmp_path, config.replace(epochs=4), ["a", "b"], MAIN)
    with pytest.raises(ValueError, match="class list"):
        prepare_run_dir(tmp_path, config, ["a", "c"], MAIN)


def test_fold_table_is_saved_and_a_resume_must_match_it(tmp_path):
    config = Config(n_folds=2, minor_class_threshold=1)
    table = prepare_folds(recordings(), config, tmp_path, MAIN)
    assert set(table["fold"]) == {0, 1} and table["row_id"].is_unique
    saved = pd.read_csv(tmp_path / "folds.csv")
    assert saved["fold"].tolist() == table["fold"].tolist()
    assert prepare_folds(table, config, tmp_path, MAIN)["fold"].tolist() == saved["fold"].tolist()
    other = table.assign(fold=1 - table["fold"])
    with pytest.raises(ValueError, match="differ from the saved ones"):
        prepare_folds(other, config, tmp_path, MAIN)


def test_pretraining_table_trains_on_sources_and_validates_on_the_competition():
    competition = recordings().assign(fold=[0, 1] * 4)
    sources = pd.DataFrame(
        {
            "path": ["/x/c/XC0.ogg", "/x/c/XC100.ogg"],
            "primary_label": ["c", "c"],
            "secondary_labels": [[], []],
            "xc_id": ["XC0", "XC100"],  # XC0 is also a competition recording
        }
    )
    table = pretraining_table(sources, competition, valid_fold=1)
    train, valid = table[table["fold"] == -1], table[table["fold"] == 1]
    assert train["xc_id"].tolist() == ["XC100"]  # the shared recording is left out
    assert valid["path"].tolist() == competition.loc[competition["fold"] == 1, "path"].tolist()
    with pytest.raises(KeyError, match="no 'fold' column"):
        pretraining_table(sources, competition.drop(columns="fold"))
    with pytest.raises(ValueError, match="no fold 7"):
        pretraining_table(sources, competition, valid_fold=7)


def test_fold_dirs_in_numeric_order(tmp_path):
    for name in ("fold10", "fold2", "foldx", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "fold3").write_text("a file, not a fold folder")
    assert list(fold_dirs(tmp_path)) == [2, 10]


def test_summary_of_a_run_without_finished_folds(tmp_path):
    (tmp_path / "fold0").mkdir()
    summary = summarize_run(tmp_path, recordings(), ["a", "b"], Config())
    assert summary == {
        "folds": [], "metric": "padded_cmap", "oof_score": None, "mean_fold_score": None,
        "oof_cmap": None, "mean_fold_cmap": None,
    }  # fmt: skip
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "history.png").stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp-*"))


def test_an_unknown_metric_fails_before_training(tmp_path):
    with pytest.raises(KeyError, match="'cmap'.*roc_auc"):
        prepare_run_dir(tmp_path, Config(metric="cmap"), ["a"], MAIN)
    assert not (tmp_path / "config.json").exists()
