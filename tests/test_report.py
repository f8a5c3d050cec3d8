"""lib.report on a hand-made out-of-fold table whose APs and confused pairs were computed by hand.

Clips (classes a, b, c, d; probabilities a b c d):
    r1 a          .9  .35 .1  .0
    r2 a          .4  .6  .2  .1
    r3 b          .5  .7  .1  .2
    r4 b (+c sec) .2  .3  .8  .1
    r5 c          .1  .6  .5  .3
    r6 c          .3  .2  .4  .05
Training table: r1..r6 plus x1 a, x2 a, x3 d (fold -1: train only).

With secondary labels (c is a label of r4):
    AP a: ranks .9P .5N .4P ...          -> (1/1 + 2/3) / 2 = 5/6
    AP b: ranks .7P .6N .6N .35N .3P ... -> (1/1 + 2/5) / 2 = 0.7
    AP c: ranks .8P .5P .4P              -> 1.0
    AP d: no positive                    -> NaN
    top wrong species: r1 b (below a), r2 b (above a), r3 a, r4 a (c is a label), r5 b (above
    c), r6 a -> (a,b) 2 above 1; (b,a) 2 above 0; (c,b) 1 above 1; (c,a) 1 above 0.
Primary labels only: r4 is a negative of c ranked first -> AP c = (1/2 + 2/3) / 2 = 7/12, and
r4's top wrong species is c (above b): (b,c) 1 above 1, (b,a) 1 above 0.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from lib.config import Config
from lib.report import (
    CONFUSED_PAIR_COLUMNS,
    SPECIES_AP_COLUMNS,
    run_species_report,
    species_report,
)

CLASSES = ["a", "b", "c", "d"]
PROBS = {
    "r1": [0.9, 0.35, 0.1, 0.0],
    "r2": [0.4, 0.6, 0.2, 0.1],
    "r3": [0.5, 0.7, 0.1, 0.2],
    "r4": [0.2, 0.3, 0.8, 0.1],
    "r5": [0.1, 0.6, 0.5, 0.3],
    "r6": [0.3, 0.2, 0.4, 0.05],
}
PRIMARY = {"r1": "a", "r2": "a", "r3": "b", "r4": "b", "r5": "c", "r6": "c"}


def oof_table() -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(PROBS, orient="index", columns=CLASSES)
    frame.insert(0, "primary_label", [PRIMARY[r] for r in frame.index])
    frame.insert(0, "fold", [0, 0, 1, 1, 2, 2])
    frame.insert(0, "row_id", frame.index)
    return frame.reset_index(drop=True)


def training_table() -> pd.DataFrame:
    rows = [(r, PRIMARY[r], "['c']" if r == "r4" else "[]", int(r[1]) // 3) for r in PRIMARY]
    rows += [("x1", "a", "[]", -1), ("x2", "a", "[]", -1), ("x3", "d", "[]", -1)]
    return pd.DataFrame(rows, columns=["row_id", "primary_label", "secondary_labels", "fold"])


def as_records(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def test_species_ap_by_hand_with_secondary_labels():
    report = species_report(
        oof_table(), training_table(), CLASSES, Config(use_secondary_labels=True)
    )
    table = report.species_ap
    assert list(table.columns) == SPECIES_AP_COLUMNS
    assert list(table["species"]) == ["b", "a", "c", "d"]  # worst first, NaN last
    ap = dict(zip(table["species"], table["ap"], strict=True))
    assert ap["a"] == pytest.approx(5 / 6)
    assert ap["b"] == pytest.approx(0.7)
    assert ap["c"] == pytest.approx(1.0)
    assert math.isnan(ap["d"])
    assert dict(zip(table["species"], table["positives"], strict=True)) == {
        "a": 2, "b": 2, "c": 3, "d": 0
    }  # fmt: skip
    assert dict(zip(table["species"], table["train_recordings"], strict=True)) == {
        "a": 4, "b": 2, "c": 2, "d": 1
    }  # fmt: skip
    assert list(report.worst(2)["species"]) == ["b", "a"]
    assert list(report.worst()["species"]) == ["b", "a", "c"]  # d has no AP: not "worst"


def test_confused_pairs_by_hand_with_secondary_labels():
    report = species_report(
        oof_table(), training_table(), CLASSES, Config(use_secondary_labels=True)
    )
    assert list(report.pairs.columns) == CONFUSED_PAIR_COLUMNS
    assert as_records(report.pairs) == [
        ("a", "b", 2, 2, 1),
        ("b", "a", 2, 2, 0),
        ("c", "b", 1, 2, 1),
        ("c", "a", 1, 2, 0),
    ]


def test_primary_labels_only_changes_ap_and_pairs():
    report = species_report(oof_table(), training_table(), CLASSES, Config())
    ap = dict(zip(report.species_ap["species"], report.species_ap["ap"], strict=True))
    assert ap["c"] == pytest.approx(7 / 12)
    assert ap["a"] == pytest.approx(5 / 6)
    assert report.species_ap.set_index("species").loc["c", "positives"] == 2
    assert as_records(report.pairs) == [
        ("a", "b", 2, 2, 1),
        ("b", "c", 1, 2, 1),
        ("c", "b", 1, 2, 1),
        ("b", "a", 1, 2, 0),
        ("c", "a", 1, 2, 0),
    ]


def test_run_folder_report_saves_files_and_text(tmp_path):
    """From a run folder as lib.train_folds leaves it; save() writes the CSVs and the plot."""
    oof_table().to_csv(tmp_path / "oof.csv", index=False)
    training_table().to_csv(tmp_path / "folds.csv", index=False)
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    Config(use_secondary_labels=True).save(tmp_path / "config.json")
    report = run_species_report(tmp_path)
    saved = report.save(tmp_path)
    assert [p.name for p in saved] == [
        "per_species_ap.csv",
        "confused_pairs.csv",
        "per_species_ap.png",
    ]
    written = pd.read_csv(tmp_path / "per_species_ap.csv")
    assert list(written.columns) == SPECIES_AP_COLUMNS
    assert written.set_index("species").loc["b", "ap"] == pytest.approx(0.7)
    assert math.isnan(written.set_index("species").loc["d", "ap"])
    assert as_records(pd.read_csv(tmp_path / "confused_pairs.csv"))[0] == ("a", "b", 2, 2, 1)
    assert (tmp_path / "per_species_ap.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]  # no temp file left
    text = report.text()
    assert "no out-of-fold positive (AP NaN): 1: d" in text
    assert "mean 0.8444" in text  # (5/6 + 0.7 + 1) / 3
    assert text.index(" b ") < text.index(" a ")  # worst first


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="oof.csv"):
        run_species_report(tmp_path)
    stranger = oof_table().assign(row_id=["r1", "r2", "r3", "r4", "r5", "zz"])
    with pytest.raises(ValueError, match="zz"):
        species_report(stranger, training_table(), CLASSES, Config())
    with pytest.raises(ValueError, match="'d'"):
        species_report(oof_table().drop(columns="d"), training_table(), CLASSES, Config())


def test_roc_auc_years_report_per_species_roc_auc_with_numeric_labels(tmp_path):
    """Metric roc_auc: per-species ROC-AUC (by hand, primary labels only: a (here the iNat id
    41778) 7/8, b 5/8, c 6/8, d no positives), files named for it, numeric labels kept as
    strings through folds.csv and oof.csv."""
    rename = {"a": "41778"}
    oof = oof_table().rename(columns=rename).replace({"primary_label": rename})
    table = training_table().replace({"primary_label": rename})
    classes = [rename.get(c, c) for c in CLASSES]
    oof.to_csv(tmp_path / "oof.csv", index=False)
    table.to_csv(tmp_path / "folds.csv", index=False)
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    Config(metric="roc_auc").save(tmp_path / "config.json")
    report = run_species_report(tmp_path)
    assert report.measure == "roc_auc"
    scores = report.per_species.set_index("species")["roc_auc"]
    assert scores[["41778", "b", "c"]].tolist() == pytest.approx([7 / 8, 5 / 8, 6 / 8])
    assert math.isnan(scores["d"])
    assert list(report.worst()["species"]) == ["b", "c", "41778"]
    names = [p.name for p in report.save(tmp_path)]
    assert names == ["per_species_roc_auc.csv", "confused_pairs.csv", "per_species_roc_auc.png"]
    assert report.plot_name == "per_species_roc_auc.png"
    text = report.text()
    assert "out-of-fold ROC-AUC per species: mean 0.7500 over 3 species" in text
    assert "no out-of-fold positive (ROC-AUC NaN): 1: d" in text
