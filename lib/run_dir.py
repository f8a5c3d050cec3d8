"""A training run's folder: atomic files, the run's identity (config, classes, folds), and the
run-level summary (out-of-fold score by the competition's metric, history plot).
lib.train_folds writes through these.

    out_dir/config.json, classes.json, folds.csv   what the run is; a resume must match them
    out_dir/fold<k>/...                            one fold (see lib.train_folds)
    out_dir/oof.csv, summary.json, history.png     all folds so far

Scores follow `Config.metric` (lib.metric.score: padded cmAP for 2023, macro ROC-AUC for
2024-2026): history.csv's `valid_score`, summary.json's `oof_score` and `mean_fold_score` with
`metric` naming it. `valid_cmap`, `oof_cmap` and `mean_fold_cmap` stay for readers of 2023
runs: the same numbers when the metric is padded cmAP, empty otherwise.

Every write goes to a temporary name first and is renamed over the target (lib.atomic), so a
run killed at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lib.atomic import atomic_write
from lib.config import Config
from lib.dataset import make_targets
from lib.distributed import DistInfo, barrier
from lib.metric import METRICS, score
from lib.sources import make_folds

# Config fields a resume may change: they do not change what is trained.
RESUME_FREE_FIELDS = frozenset(
    {"folds", "num_workers", "infer_processes", "infer_threads", "infer_batch_size",
     "time_budget_minutes", "fallback_probability", "max_probability", "cache_budget_gb",
     "cache_min_free_gb", "plan_loader_seconds", "plan_warmup_steps", "test_file_seconds"}
)  # fmt: skip
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_score",
    "valid_cmap",
    "lr",
    "seconds",
]
CMAP = "padded_cmap"  # the metric whose scores also go under the *_cmap keys (2023 readers)
METRIC_LABELS = {"padded_cmap": "padded cmAP", "roc_auc": "ROC-AUC"}  # what lines print


def metric_label(metric: str) -> str:
    """How a printed line names the metric: 'padded cmAP', 'ROC-AUC'."""
    return METRIC_LABELS.get(metric, metric)


def score_clips(
    row_ids: list[str], truth: np.ndarray, probs: np.ndarray, classes, metric: str = CMAP
) -> float:
    """`metric` (lib.metric.score) of clip predictions: solution = labels present (> 0), as
    Kaggle scores. ROC-AUC is undefined for a class positive in every clip: such classes are
    left out (a small validation fold can have one); with no class left the score is NaN."""
    present = (np.asarray(truth) > 0).astype(np.int8)  # (clips, classes)
    keep = np.ones(len(classes), dtype=bool)
    if metric == "roc_auc":
        keep = (present.sum(axis=0) < len(present)) | (len(present) == 0)
        if not (present[:, keep].sum(axis=0) > 0).any():
            return float("nan")
    names = [c for c, k in zip(classes, keep, strict=True) if k]
    solution = pd.DataFrame(present[:, keep], columns=names)
    submission = pd.DataFrame(np.asarray(probs)[:, keep], columns=names)
    solution.insert(0, "row_id", list(row_ids))
    submission.insert(0, "row_id", list(row_ids))
    return score(metric, solution, submission)


OOF_ID_COLUMNS = ["row_id", "fold", "primary_label"]


def write_json_atomic(path: str | Path, data) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv_atomic(path: str | Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def prepare_run_dir(out_dir: Path, config: Config, classes: list[str], info: DistInfo) -> None:
    """Write config.json and classes.json for a new run; for an existing one, check they match
    (resuming with other settings would silently mix two experiments in one folder). An
    unknown config.metric fails here, before any epoch is spent."""
    if config.metric not in METRICS:
        raise KeyError(
            f"config.metric {config.metric!r} is not a metric of lib.metric.METRICS "
            f"({list(METRICS)}); set it from the competition's profile (profile_settings)"
        )
    saved = out_dir / "config.json"
    if saved.is_file():
        old, new = json.loads(saved.read_text()), json.loads(json.dumps(config.to_dict()))
        changed = sorted(k for k in new if k not in RESUME_FREE_FIELDS and old.get(k) != new[k])
        if changed:
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed[:6])
            raise ValueError(
                f"{out_dir} holds a run with other settings ({diff}); resume it with its own "
                f"config ({saved}) or train into a new folder"
            )
    elif info.is_main:
        write_json_atomic(saved, config.to_dict())
    saved_classes = out_dir / "classes.json"
    if saved_classes.is_file() and json.loads(saved_classes.read_text()) != list(classes):
        raise ValueError(f"{saved_classes}: the class list differs from this run's")
    if info.is_main and not saved_classes.is_file():
        write_json_atomic(saved_classes, list(classes))
    barrier(info)


def clip_row_ids(table: pd.DataFrame) -> list[str]:
    """An id per row, unique: '<label folder>/<file stem>' for a recording (e.g.
    'abethr1/XC128013'), '<folder>/<file stem>_<end s>' for a soundscape segment (a finite
    `offset`: the submission's row_id shape, e.g. 'train_soundscapes/BC2026_Train_0001_.._10')."""
    offsets = table["offset"] if "offset" in table.columns else [np.nan] * len(table)
    lengths = table["duration"] if "duration" in table.columns else [np.nan] * len(table)
    ends = pd.to_numeric(pd.Series(offsets), errors="coerce").to_numpy(float) + pd.to_numeric(
        pd.Series(lengths), errors="coerce"
    ).to_numpy(float)
    ids = pd.Series([
        f"{Path(p).parent.name}/{Path(p).stem}" + (f"_{round(end)}" if np.isfinite(end) else "")
        for p, end in zip(table["path"], ends, strict=True)
    ])  # fmt: skip
    clash = ids.duplicated(keep=False).to_numpy()
    return [f"{i}#{n}" if c else i for n, (i, c) in enumerate(zip(ids, clash, strict=True))]


def with_row_ids(table: pd.DataFrame) -> pd.DataFrame:
    if "row_id" in table.columns:
        return table
    return table.assign(row_id=clip_row_ids(table))


def prepare_folds(
    table: pd.DataFrame, config: Config, out_dir: Path, info: DistInfo
) -> pd.DataFrame:
    """The run's fold table: made unless the table has a `fold` column, checked against a saved
    folds.csv (a resume must validate on the same recordings), saved with the run."""
    if "fold" not in table.columns:
        table = make_folds(table, config.n_folds, config.minor_class_threshold, config.seed)
    table = with_row_ids(table)
    saved = out_dir / "folds.csv"
    if saved.is_file():
        old = pd.read_csv(saved, usecols=["path", "fold"])
        before = dict(zip(old["path"], old["fold"], strict=True))
        if before != dict(zip(table["path"], table["fold"], strict=True)):
            raise ValueError(f"{saved}: this run's recordings or folds differ from the saved ones")
    elif info.is_main:
        write_csv_atomic(saved, table)
    barrier(info)
    return table


def pretraining_table(
    sources: pd.DataFrame, competition: pd.DataFrame, valid_fold: int = 0
) -> pd.DataFrame:
    """The pre-training stage's table: every pre-training recording trains (fold -1) and the
    competition's fold `valid_fold` validates, so pre-training is judged on the target data.

    Recordings the competition also holds (same recording id: XC, iNat, CSA; tables without
    `recording_id` use `xc_id`) are left out, so no recording that a fine-tuning fold
    validates on was seen with its label during pre-training.
    `competition` must have its folds (make_folds); the fine-tuning run must use the same.
    """
    if "fold" not in competition.columns:
        raise KeyError("pretraining_table: the competition table has no 'fold' column")
    key = "recording_id" if {"recording_id"} <= set(sources) & set(competition) else "xc_id"
    own = set(competition[key]) - {""}
    train = sources[~sources[key].isin(own)].assign(fold=-1)
    valid = competition[competition["fold"] == valid_fold]
    if valid.empty:
        raise ValueError(f"pretraining_table: the competition table has no fold {valid_fold}")
    return pd.concat([train, valid], ignore_index=True)


def fold_dirs(out_dir: Path) -> dict[int, Path]:
    """{k: out_dir/fold<k>} for every fold folder present, in fold order."""
    found = {}
    for path in Path(out_dir).glob("fold*"):
        suffix = path.name[len("fold") :]
        if path.is_dir() and suffix.isdigit():
            found[int(suffix)] = path
    return dict(sorted(found.items()))


def summarize_run(out_dir: Path, table: pd.DataFrame, classes: list[str], config: Config) -> dict:
    """Merge the finished folds' oof.csv into out_dir/oof.csv, score them together
    (config.metric over all out-of-fold clips: `oof_score`), plot the histories; write
    summary.json; return it."""
    results, frames = [], []
    for path in fold_dirs(out_dir).values():
        if (path / "result.json").is_file():
            results.append(json.loads((path / "result.json").read_text()))
            frames.append(pd.read_csv(path / "oof.csv", dtype={"primary_label": str}))
    summary = {"folds": results, "metric": config.metric, "oof_score": None,
               "mean_fold_score": None, "oof_cmap": None, "mean_fold_cmap": None}  # fmt: skip
    if frames:
        oof = pd.concat(frames, ignore_index=True)
        rows = with_row_ids(table).set_index("row_id").loc[oof["row_id"]].reset_index()
        truth = make_targets(rows, classes, config)  # (clips, classes)
        probs = oof[list(classes)].to_numpy(dtype=float)
        summary["oof_score"] = score_clips(oof["row_id"], truth, probs, classes, config.metric)
        summary["mean_fold_score"] = float(np.mean([r["best_score"] for r in results]))
        if config.metric == CMAP:
            summary["oof_cmap"] = summary["oof_score"]
            summary["mean_fold_cmap"] = summary["mean_fold_score"]
        write_csv_atomic(out_dir / "oof.csv", oof)
    figure = plot_history(out_dir, metric_label(config.metric))
    atomic_write(out_dir / "history.png", lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def plot_history(out_dir: Path, metric: str = METRIC_LABELS[CMAP]) -> Figure:
    """Loss (train solid, valid dashed) and the validation score (`metric`: its name on the
    axis) per epoch, one colour per fold.

    A bare matplotlib Figure (no pyplot): no global figure state, no GUI backend needed.
    """
    figure = Figure(figsize=(11, 4))
    loss_ax, score_ax = figure.subplots(1, 2)
    for k, (fold, path) in enumerate(fold_dirs(out_dir).items()):
        if not (path / "history.csv").is_file():
            continue
        history = pd.read_csv(path / "history.csv")
        epochs, colour = history["epoch"] + 1, f"C{k % 10}"
        loss_ax.plot(epochs, history["train_loss"], color=colour, label=f"fold {fold} train")
        loss_ax.plot(epochs, history["valid_loss"], "--", color=colour, label=f"fold {fold} valid")
        column = "valid_score" if "valid_score" in history.columns else "valid_cmap"
        score_ax.plot(epochs, history[column], "o-", color=colour, label=f"fold {fold}")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (train solid, valid dashed)")
    score_ax.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    for ax in (loss_ax, score_ax):
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
