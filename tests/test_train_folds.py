"""lib.train_folds on the synthetic competition: learning, the run directory it writes, resume,
skipping, best checkpoint, deadline, pre-train -> fine-tune, seeds, and the 2-process DDP run
(gloo on the CPU, launched like the notebook).

A tiny CNN (TINY_BACKBONE), 64 mels and 1-2 s clips keep the whole file to a few minutes on two
cores; every run is seeded, so each assertion is deterministic on a given machine.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_BACKBONE
from test_distributed import notebook_namespace

import lib.train_folds as train_module
from lib.competitions import PROFILES, parse_label_list, profile_settings
from lib.config import Config
from lib.dataset import AudioCache
from lib.fold_trainer import derive_seed, evaluate_model, init_fold_model
from lib.metric import roc_auc
from lib.model import load_checkpoint, model_from_checkpoint
from lib.report import run_species_report
from lib.run_dir import pretraining_table
from lib.sources import (
    class_list,
    make_folds,
    read_birdclef2023,
    read_competition,
    read_sources,
    split_fold,
    training_classes,
)
from lib.train_folds import train_fold, train_folds
from workbench.synthetic import SyntheticSpec, make_competition
from workbench.synthetic.years import YEAR_SPEC, make_year_competition

SPEC = SyntheticSpec(
    n_species=6,
    recordings_per_species=(12, 14),
    recording_seconds=(3.0, 6.0),
    n_soundscapes=1,
    soundscape_seconds=10.0,
    minor_species=0,
    pretrain_extra_species=1,
)
# Learns within seconds on the CPU: tiny CNN, light dropout, SpecAugment masks scaled to 64 mels.
LEARN = Config(
    backbone=TINY_BACKBONE,
    pretrained=False,
    n_mels=64,
    clip_seconds=2.0,
    n_folds=3,
    folds=(0,),
    batch_size=4,
    num_workers=0,
    lr=3e-3,
    dropout=0.1,
    freq_mask_max=6,
    time_mask_max=10,
    background_noise_p=0.0,  # the synthetic competition has no noise recordings
    epochs=6,
)
# Cheaper still, for the runs that check bookkeeping rather than learning.
QUICK = LEARN.replace(clip_seconds=1.0, batch_size=16, epochs=3)
PRETRAIN_SOURCES = ("birdsong-recognition", "birdclef-2021", "birdclef-2022", "xeno-canto-extended")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on two cores shared with other work, two threads spin-waiting on each
    other ran these runs ~20x slower (measured); module scope, so it covers the shared runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_competition(root, SPEC)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio-cache")


@pytest.fixture(scope="module")
def table(root) -> pd.DataFrame:
    """The competition's recordings with 3 folds (-1: species trained in every fold)."""
    comp = read_birdclef2023(root / "birdclef-2023")
    return make_folds(comp, LEARN.n_folds, LEARN.minor_class_threshold, LEARN.seed)


@pytest.fixture(scope="module")
def classes(table) -> list[str]:
    return class_list(table)


@pytest.fixture(scope="module")
def learned(tmp_path_factory, table, classes, cache_dir) -> Path:
    """One uninterrupted run of LEARN (fold 0), shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("learned")
    train_folds(LEARN, table, classes, out, cache_dir=cache_dir)
    return out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, table, classes, cache_dir) -> Path:
    out = tmp_path_factory.mktemp("quick")
    train_fold(QUICK, table, classes, 0, out, cache_dir=cache_dir)
    return out


def history(run: Path, fold: int = 0) -> pd.DataFrame:
    return pd.read_csv(run / f"fold{fold}" / "history.csv")


def test_training_beats_the_untrained_model(learned, table, classes, cache_dir):
    _, valid = split_fold(table, 0)
    cache = AudioCache(cache_dir, LEARN.sample_rate, LEARN.cache_dtype)
    untrained, _ = init_fold_model(LEARN, classes, derive_seed(LEARN.seed, 0))
    untrained_score, _ = evaluate_model(untrained, LEARN, valid, classes, cache)
    trained, config, saved_classes = model_from_checkpoint(learned / "fold0" / "best.pt")
    trained_score, _ = evaluate_model(trained, config, valid, classes, cache)
    result = json.loads((learned / "fold0" / "result.json").read_text())
    print(f"padded cmAP untrained {untrained_score:.4f} -> trained {trained_score:.4f}")
    assert saved_classes == classes and config == LEARN
    assert trained_score == pytest.approx(result["best_score"], abs=1e-6)  # best.pt is the best
    assert trained_score >= untrained_score + 0.1, (untrained_score, trained_score)
    losses = history(learned)
    assert losses["train_loss"].iloc[-1] < losses["train_loss"].iloc[0]
    assert losses["valid_loss"].iloc[-1] < losses["valid_loss"].iloc[0]


def test_run_directory_layout(learned, table, classes):
    assert Config.load(learned / "config.json") == LEARN
    assert json.loads((learned / "classes.json").read_text()) == classes
    folds = pd.read_csv(learned / "folds.csv")
    assert folds["path"].tolist() == table["path"].tolist()
    assert folds["fold"].tolist() == table["fold"].tolist()
    hist = history(learned)
    assert list(hist.columns) == [
        "epoch",
        "train_loss",
        "valid_loss",
        "valid_score",
        "valid_cmap",
        "lr",
        "seconds",
    ]
    assert hist["epoch"].tolist() == list(range(LEARN.epochs))
    assert hist["lr"].iloc[0] == pytest.approx(LEARN.lr)  # cosine from lr down, no warm-up
    assert (np.diff(hist["lr"]) < 0).all() and hist["lr"].iloc[-1] > LEARN.min_lr
    best = load_checkpoint(learned / "fold0" / "best.pt")
    assert best["epoch"] == int(hist["valid_cmap"].idxmax())  # never replaced by a worse epoch
    assert best["score"] == pytest.approx(hist["valid_cmap"].max())
    assert hist["valid_score"].equals(hist["valid_cmap"])  # 2023: the score is the padded cmAP
    oof = pd.read_csv(learned / "fold0" / "oof.csv")
    _, valid = split_fold(table, 0)
    assert list(oof.columns) == ["row_id", "fold", "primary_label", *classes]
    assert len(oof) == len(valid) and oof["row_id"].is_unique
    assert (oof["primary_label"].to_numpy() == valid["primary_label"].to_numpy()).all()
    summary = json.loads((learned / "summary.json").read_text())
    assert summary["complete"] and summary["oof_cmap"] == pytest.approx(best["score"])
    assert summary["metric"] == "padded_cmap" and summary["oof_score"] == summary["oof_cmap"]
    assert (learned / "history.png").stat().st_size > 1000
    assert (learned / "oof.csv").is_file()
    assert not list(learned.rglob("*.tmp-*"))  # lib.atomic's temporary names


def test_finished_fold_is_skipped(learned, table, classes, cache_dir):
    files = sorted(p for p in (learned / "fold0").iterdir())
    before = {p: p.stat().st_mtime_ns for p in files}
    result = train_fold(LEARN, table, classes, 0, learned, cache_dir=cache_dir)
    assert result["skipped"] and result["complete"]
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_resume_after_a_crash_equals_an_uninterrupted_run(
    quick_run, table, classes, cache_dir, tmp_path, monkeypatch
):
    real_epoch = train_module.train_one_epoch

    def crash_at_epoch_2(t, loader, epoch):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill during epoch 2")
        return real_epoch(t, loader, epoch)

    monkeypatch.setattr(train_module, "train_one_epoch", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_fold(QUICK, table, classes, 0, tmp_path, cache_dir=cache_dir)
    assert history(tmp_path)["epoch"].tolist() == [0, 1]
    assert not (tmp_path / "fold0" / "result.json").exists()
    assert torch.load(tmp_path / "fold0" / "last.pt", weights_only=False)["next_epoch"] == 2
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    result = train_fold(QUICK, table, classes, 0, tmp_path, cache_dir=cache_dir)
    assert result["complete"] and result["epochs_done"] == QUICK.epochs
    resumed, uninterrupted = history(tmp_path), history(quick_run)
    assert resumed["epoch"].tolist() == list(range(QUICK.epochs))  # every epoch, once
    for column in ("train_loss", "valid_loss", "valid_cmap", "lr"):
        assert resumed[column].tolist() == uninterrupted[column].tolist(), column
    a = load_checkpoint(tmp_path / "fold0" / "best.pt")["model"]
    b = load_checkpoint(quick_run / "fold0" / "best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_run(quick_run, table, classes, cache_dir, tmp_path):
    train_fold(QUICK, table, classes, 0, tmp_path, cache_dir=cache_dir)
    again, first = history(tmp_path), history(quick_run)
    assert again["train_loss"].tolist() == first["train_loss"].tolist()
    assert again["valid_loss"].tolist() == first["valid_loss"].tolist()
    other = QUICK.replace(seed=QUICK.seed + 1)
    train_fold(other.replace(epochs=1), table, classes, 0, tmp_path / "other", cache_dir=cache_dir)
    assert history(tmp_path / "other")["train_loss"][0] != first["train_loss"][0]


def test_best_checkpoint_only_replaced_by_a_better_score(
    table, classes, cache_dir, tmp_path, monkeypatch
):
    scores = iter([0.5, 0.9, 0.3])
    seen = {}

    def fake_validate(t, loader, valid_ds, row_ids):
        probs = np.full((len(valid_ds), len(t.classes)), 0.5, dtype=np.float32)
        return next(scores), 1.0, probs

    def fake_epoch(t, loader, epoch):
        best = tmp_path / "fold0" / "best.pt"
        seen[epoch] = best.stat().st_mtime_ns if best.exists() else None
        return 1.0

    monkeypatch.setattr(train_module, "validate", fake_validate)
    monkeypatch.setattr(train_module, "train_one_epoch", fake_epoch)
    result = train_fold(QUICK, table, classes, 0, tmp_path, cache_dir=cache_dir)
    best = load_checkpoint(tmp_path / "fold0" / "best.pt")
    assert (best["epoch"], best["score"]) == (1, 0.9)
    assert (result["best_epoch"], result["best_score"]) == (1, 0.9)
    assert seen[2] is not None and seen[2] == (tmp_path / "fold0" / "best.pt").stat().st_mtime_ns


def test_a_crash_while_saving_keeps_the_previous_checkpoint(
    table, classes, cache_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(train_module, "train_one_epoch", lambda t, loader, epoch: 1.0)
    real_save = torch.save
    saves = {"last": 0}

    def failing_save(obj, path, *args, **kwargs):
        if Path(path).name.startswith("last.tmp-"):  # lib.atomic's temporary last.pt
            saves["last"] += 1
            if saves["last"] == 2:  # the second epoch's last.pt: half written, then killed
                Path(path).write_bytes(b"half a checkpoint")
                raise KeyboardInterrupt("killed while saving")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        train_fold(QUICK, table, classes, 0, tmp_path, cache_dir=cache_dir)
    last = torch.load(tmp_path / "fold0" / "last.pt", weights_only=False)
    assert last["next_epoch"] == 1  # the first epoch's, intact
    assert not list(tmp_path.rglob("*.tmp-*"))  # the half-written temporary file is gone


def test_deadline_stops_at_an_epoch_boundary_and_the_next_call_continues(
    table, classes, cache_dir, tmp_path
):
    config = QUICK.replace(epochs=2)
    first = train_fold(config, table, classes, 0, tmp_path, cache_dir=cache_dir, deadline=0.0)
    assert not first["complete"] and first["epochs_done"] == 1
    assert not (tmp_path / "fold0" / "result.json").exists()
    second = train_fold(config, table, classes, 0, tmp_path, cache_dir=cache_dir)
    assert second["complete"] and history(tmp_path)["epoch"].tolist() == [0, 1]


def test_resume_refuses_other_settings(quick_run, table, classes, cache_dir):
    with pytest.raises(ValueError, match="lr"):
        train_fold(QUICK.replace(lr=1e-4), table, classes, 1, quick_run, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="class list"):
        train_fold(QUICK, table, classes[:-1], 1, quick_run, cache_dir=cache_dir)


def test_pretrain_then_finetune_keeps_the_backbone_and_renews_the_head(
    root, table, classes, cache_dir, tmp_path
):
    sources = read_sources({name: root / name for name in PRETRAIN_SOURCES})
    pre_table = pretraining_table(sources, table, valid_fold=0)
    pre_classes = class_list(pre_table)
    assert set(classes) < set(pre_classes)  # the union holds species 2023 does not
    assert not set(pre_table.loc[pre_table["fold"] == -1, "xc_id"]) & set(table["xc_id"])
    assert (
        pre_table.loc[pre_table["fold"] == 0, "path"].tolist()
        == split_fold(table, 0)[1]["path"].tolist()
    )
    pre_config = QUICK.replace(stage="pretrain", epochs=1)
    pre = train_folds(
        pre_config, pre_table, pre_classes, tmp_path / "pretrain", cache_dir=cache_dir
    )
    assert pre["complete"]
    weights = tmp_path / "pretrain" / "fold0" / "best.pt"
    pretrained = load_checkpoint(weights)["model"]
    model, fresh = init_fold_model(QUICK, classes, seed=1, init_weights=weights)
    state = model.state_dict()
    assert fresh and all(name.startswith("head.") for name in fresh)
    assert all(torch.equal(state[k], pretrained[k]) for k in state if k.startswith("backbone."))
    assert torch.equal(state["fc.weight"], pretrained["fc.weight"])
    assert state["head.classifier.weight"].shape[0] == len(classes)

    fine_config = QUICK.replace(stage="finetune", epochs=1)
    fine = train_folds(
        fine_config,
        table,
        classes,
        tmp_path / "finetune",
        cache_dir=cache_dir,
        init_weights=weights,
    )
    assert fine["complete"]
    best = load_checkpoint(tmp_path / "finetune" / "fold0" / "best.pt")
    assert best["classes"] == classes and best["config"]["stage"] == "finetune"


@pytest.mark.slow
def test_ddp_two_processes_gloo_like_the_notebook(table, classes, cache_dir, tmp_path, capfd):
    """torchrun, 2 CPU processes, gloo, from a notebook-like namespace (the library exists
    only as cell text). Both ranks train; rank 0 alone writes; the result is what one process
    computes from the saved best.pt."""
    ns = notebook_namespace()
    config = ns["Config"].from_dict(QUICK.replace(epochs=2).to_dict())
    out = tmp_path / "ddp"
    summary = ns["launch_ddp"](config, table, classes, out, nproc=2, cache_dir=cache_dir)
    output = capfd.readouterr().out
    for rank in (0, 1):
        assert f"rank {rank}/2 started" in output and f"rank {rank}/2 done" in output
    script = (out / "ddp" / "train_ddp.py").read_text()
    assert "from lib" not in script and "import lib" not in script
    assert summary["complete"]
    result = summary["folds"][0]
    assert result["world_size"] == 2 and result["epochs_done"] == 2
    assert history(out)["epoch"].tolist() == [0, 1]

    _, valid = split_fold(table, 0)
    oof = pd.read_csv(out / "fold0" / "oof.csv")
    assert sorted(oof["row_id"]) == sorted(train_module.with_row_ids(valid)["row_id"])
    model, saved_config, _ = model_from_checkpoint(out / "fold0" / "best.pt")
    cache = AudioCache(cache_dir, saved_config.sample_rate, saved_config.cache_dtype)
    score, probs = evaluate_model(model, saved_config, valid, classes, cache)
    assert score == pytest.approx(result["best_score"], abs=1e-6)
    assert np.allclose(probs, oof[classes].to_numpy(), atol=1e-5)
    assert math.isfinite(summary["oof_cmap"])
    assert not os.environ.get("BIRDCLEF_DDP_CHILD")


# --- training at scale: bad files in the table, the epoch bar (h9-data) ----------------------


def test_bad_files_in_the_table_are_skipped_listed_and_training_goes_on(
    table, classes, tmp_path, capsys
):
    """0-byte, truncated, non-audio (header pass: dropped) and silent (first use: a silent
    clip) recordings; the run completes and lists all four in skipped_files.csv."""
    from lib.audio import write_audio

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    empty, truncated, text, silent = (bad_dir / f"{n}.ogg" for n in ("e", "t", "x", "s"))
    empty.write_bytes(b"")
    truncated.write_bytes(Path(table.path[0]).read_bytes()[:1500])
    text.write_text("not audio\n" * 40)
    write_audio(silent, np.zeros(3 * LEARN.sample_rate, dtype=np.float32), LEARN.sample_rate)
    label = table.loc[table["fold"] != 0, "primary_label"].iloc[0]
    extra = pd.DataFrame({
        "path": [str(p) for p in (empty, truncated, text, silent)], "primary_label": label,
        "secondary_labels": [[]] * 4, "source": "birdclef-2023", "xc_id": "", "rating": 5.0,
        "fold": 1, "root": table["root"].iloc[0],  # the same attached folder: judged with it
    })  # fmt: skip
    with_bad = pd.concat([table, extra], ignore_index=True)
    out = tmp_path / "run"
    summary = train_folds(QUICK.replace(epochs=1), with_bad, classes, out)
    assert summary["complete"]
    listed = pd.read_csv(out / "skipped_files.csv")
    assert sorted(listed["path"]) == sorted(extra["path"])
    assert listed.set_index("path").loc[str(silent), "reason"].startswith("silent")
    folds = pd.read_csv(out / "folds.csv")
    assert str(silent) in set(folds["path"]) and str(empty) not in set(folds["path"])
    assert (out / "durations.csv").is_file()
    output = capsys.readouterr()
    assert "3 of" in output.out and "unreadable, skipped" in output.out
    assert "finetune fold 0" in output.err  # the fold's epoch bar


@pytest.mark.parametrize("slug", ["birdclef-2025", "birdclef-2026"])
def test_a_roc_auc_year_trains_and_scores_out_of_fold_by_its_metric(slug, tmp_path):
    """A short run on a synthetic 2025 (iNat ids, a sonotype) and 2026 (plus labelled
    soundscape segments): summary.json's oof_score is lib.metric.roc_auc recomputed from
    oof.csv and folds.csv, with metric "roc_auc"; no cmAP is claimed."""
    prof = PROFILES[slug]
    comp = make_year_competition(tmp_path / "input", prof, replace(YEAR_SPEC, n_soundscapes=1))
    table = read_competition(prof, comp)
    classes = training_classes(prof, comp, table)
    config = QUICK.replace(
        **profile_settings(prof), epochs=1, n_folds=2, folds=(), minor_class_threshold=0,
        clip_seconds=5.0, batch_size=8,
    )  # fmt: skip
    summary = train_folds(config, table, classes, tmp_path / "run")
    assert summary["complete"] and summary["metric"] == "roc_auc"
    assert summary["oof_cmap"] is None and summary["mean_fold_cmap"] is None
    oof = pd.read_csv(tmp_path / "run" / "oof.csv", dtype={"primary_label": str})
    folds = pd.read_csv(tmp_path / "run" / "folds.csv", dtype=str, keep_default_na=False)
    rows = folds.set_index("row_id").loc[oof["row_id"]]
    segment = rows["source"].str.endswith("-soundscapes").to_numpy()
    labels = [
        {primary, *(parse_label_list(secondary) if is_segment else [])}
        for primary, secondary, is_segment in zip(
            rows["primary_label"], rows["secondary_labels"], segment, strict=True
        )
    ]
    solution = pd.DataFrame([[int(c in row) for c in classes] for row in labels], columns=classes)
    solution.insert(0, "row_id", oof["row_id"])
    expected = roc_auc(solution, oof[["row_id", *classes]])
    assert summary["oof_score"] == pytest.approx(expected, abs=1e-12)
    assert {"41778", "47158son16"} <= set(oof.columns)  # numeric labels: the header as written
    if slug == "birdclef-2026":
        assert segment.any()  # segments were validated, each file in one fold
        segs = folds[folds["source"].str.endswith("-soundscapes")]
        assert (segs.groupby("path")["fold"].nunique() == 1).all()
    history_rows = pd.read_csv(tmp_path / "run" / "fold0" / "history.csv")
    assert history_rows["valid_cmap"].isna().all() and history_rows["valid_score"].notna().all()
    report = run_species_report(tmp_path / "run")
    assert report.measure == "roc_auc" and list(report.per_species["species"]) != []
