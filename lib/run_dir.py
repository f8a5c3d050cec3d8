"""A training run's folder: atomic files, the run's identity (config, classes, folds), and the
run-level summary (out-of-fold cmAP, history plot). lib.train_folds writes through these.

    out_dir/config.json, classes.json, folds.csv   what the run is; a resume must match them
    out_dir/fold<k>/...                            one fold (see lib.train_folds)
    out_dir/oof.csv, summary.json, history.png     all folds so far

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
from lib.metric import padded_cmap
from lib.sources import make_folds

# Config fields a resume may change: they do not change what is trained.
RESUME_FREE_FIELDS = frozenset(
    {"folds", "num_workers", "infer_processes", "infer_threads", "infer_batch_size",
     "time_budget_minutes", "fallback_probability", "max_probability"}
)  # fmt: skip
HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "valid_cmap", "lr", "seconds"]
OOF_ID_COLUMNS = ["row_id", "fold", "primary_label"]


def write_json_atomic(path: str | Path, data) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv_atomic(path: str | Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def prepare_run_dir(out_dir: Path, config: Config, classes: list[str], info: DistInfo) -> None:
    """Write config.json and classes.json for a new run; for an existing one, check they match
    (resuming with other settings would silently mix two experiments in one folder)."""
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
    """An id per recording, '<label folder>/<file stem>' (e.g. 'abethr1/XC128013'), unique."""
    ids = pd.Series([f"{Path(p).parent.name}/{Path(p).stem}" for p in table["path"]])
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

    Recordings the competition also holds (same XC id) are left out, so no recording that a
    fine-tuning fold validates on was seen with its label during pre-training.
    `competition` must have its folds (make_folds); the fine-tuning run must use the same.
    """
    if "fold" not in competition.columns:
        raise KeyError("pretraining_table: the competition table has no 'fold' column")
    own = set(competition["xc_id"]) - {""}
    train = sources[~sources["xc_id"].isin(own)].assign(fold=-1)
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
    """Merge the finished folds' oof.csv into out_dir/oof.csv, score them together (padded
    cmAP over all out-of-fold clips), plot the histories; write summary.json; return it."""
    results, frames = [], []
    for path in fold_dirs(out_dir).values():
        if (path / "result.json").is_file():
            results.append(json.loads((path / "result.json").read_text()))
            frames.append(pd.read_csv(path / "oof.csv"))
    summary = {"folds": results, "oof_cmap": None, "mean_fold_cmap": None}
    if frames:
        oof = pd.concat(frames, ignore_index=True)
        rows = with_row_ids(table).set_index("row_id").loc[oof["row_id"]].reset_index()
        truth = make_targets(rows, classes, config) > 0  # (clips, classes)
        solution = pd.DataFrame(truth.astype(np.int8), columns=classes)
        solution.insert(0, "row_id", oof["row_id"].to_numpy())
        summary["oof_cmap"] = padded_cmap(solution, oof.drop(columns=OOF_ID_COLUMNS[1:]))
        summary["mean_fold_cmap"] = float(np.mean([r["best_score"] for r in results]))
        write_csv_atomic(out_dir / "oof.csv", oof)
    figure = plot_history(out_dir)
    atomic_write(out_dir / "history.png", lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def plot_history(out_dir: Path) -> Figure:
    """Loss (train solid, valid dashed) and validation cmAP per epoch, one colour per fold.

    A bare matplotlib Figure (no pyplot): no global figure state, no GUI backend needed.
    """
    figure = Figure(figsize=(11, 4))
    loss_ax, cmap_ax = figure.subplots(1, 2)
    for k, (fold, path) in enumerate(fold_dirs(out_dir).items()):
        if not (path / "history.csv").is_file():
            continue
        history = pd.read_csv(path / "history.csv")
        epochs, colour = history["epoch"] + 1, f"C{k % 10}"
        loss_ax.plot(epochs, history["train_loss"], color=colour, label=f"fold {fold} train")
        loss_ax.plot(epochs, history["valid_loss"], "--", color=colour, label=f"fold {fold} valid")
        cmap_ax.plot(epochs, history["valid_cmap"], "o-", color=colour, label=f"fold {fold}")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (train solid, valid dashed)")
    cmap_ax.set(xlabel="epoch", ylabel="padded cmAP", title="validation padded cmAP")
    for ax in (loss_ax, cmap_ax):
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
