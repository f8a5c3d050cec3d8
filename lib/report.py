"""Which species a run fails on: out-of-fold score per species (AP, or ROC-AUC for the
ROC-AUC years), against training recordings, the worst species and the species pairs most often
confused.

Read from a finished run folder (lib.run_dir): `oof.csv` (row_id, fold, primary_label, one
probability column per species), `folds.csv` (the run's training table), `classes.json`,
`config.json`. Definitions, stated once here and in the text the notebook shows:

- labels of a clip: its primary label, plus its secondary labels when the run trained with
  them (`Config.use_secondary_labels`; every label of a labelled soundscape segment): the same
  truth as the run's out-of-fold score.
- `positives`: out-of-fold clips (one per validated recording or segment) of which the species
  is a label.
- the per-species measure follows the run's metric (`Config.metric`, SPECIES_MEASURES):
  `ap`, average precision of the species' probability column over all out-of-fold clips,
  unpadded (sklearn `average_precision_score`), for padded cmAP (2023); `roc_auc`, the
  species' ROC-AUC over all out-of-fold clips, for the macro ROC-AUC of 2024-2026 (the
  competition's score is their mean). A species with no positive has none: NaN, listed as
  "no positives" (the padded cmAP scores it ~1, the ROC-AUC metric skips it); so has a species
  positive in every clip (ROC-AUC undefined). Species rarely validated have noisy scores.
- `train_recordings`: rows of the run's table whose primary label is the species (all folds
  together, fold -1 included; each fold trains on the rows outside its own fold).
- confused pair (A, B): for a clip whose primary label is A, B is the highest-scoring species
  that is not one of the clip's labels (ties: the first in class order). `count`: clips of A
  whose top wrong species is B; `above`: of those, clips where B also scored above A (the
  model ranked B first: a real mistake, not only the runner-up).

Files written by `SpeciesReport.save(run_dir)` (atomically): per_species_<measure>.csv
(per_species_ap.csv for 2023), confused_pairs.csv, per_species_<measure>.png
(`SpeciesReport.plot_name`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, roc_auc_score

from lib.atomic import AtomicTarget
from lib.config import Config
from lib.dataset import make_targets

SPECIES_MEASURES = {"padded_cmap": "ap", "roc_auc": "roc_auc"}  # run metric -> per species
MEASURE_LABELS = {"ap": "AP", "roc_auc": "ROC-AUC"}
SPECIES_AP_COLUMNS = ["species", "ap", "train_recordings", "positives"]
CONFUSED_PAIR_COLUMNS = ["species", "confused_with", "count", "clips", "above"]
REPORT_WORST = 10  # species listed as the worst
REPORT_PAIRS = 10  # confused pairs listed


def species_columns(measure: str) -> list[str]:
    """The per-species table's columns: SPECIES_AP_COLUMNS with `measure` for 'ap'."""
    return ["species", measure, "train_recordings", "positives"]


@dataclass(frozen=True)
class SpeciesReport:
    """Per-species scores (species_columns(measure), worst first) and confused pairs
    (CONFUSED_PAIR_COLUMNS, most frequent first) of one run's out-of-fold predictions.
    `measure`: 'ap' (2023's padded cmAP runs) or 'roc_auc' (2024-2026)."""

    per_species: pd.DataFrame
    pairs: pd.DataFrame
    measure: str = "ap"

    @property
    def species_ap(self) -> pd.DataFrame:
        """The per-species table under its 2023 name (holds `measure`, AP or ROC-AUC)."""
        return self.per_species

    @property
    def plot_name(self) -> str:
        """The plot's file name in the run folder: per_species_ap.png, per_species_roc_auc.png."""
        return f"per_species_{self.measure}.png"

    def worst(self, n: int = REPORT_WORST) -> pd.DataFrame:
        """The n species with the lowest score (species without one left out)."""
        return self.per_species.dropna(subset=[self.measure]).head(n)

    def save(self, run_dir: str | Path) -> list[Path]:
        run_dir = Path(run_dir)
        names = (f"per_species_{self.measure}.csv", "confused_pairs.csv")
        paths = [run_dir / n for n in names]
        for path, frame in zip(paths, (self.per_species, self.pairs), strict=True):
            with AtomicTarget(path) as target:
                frame.to_csv(target.tmp, index=False)
        png = run_dir / self.plot_name
        figure = plot_ap_vs_recordings(self.per_species, measure=self.measure)
        with AtomicTarget(png) as target:
            figure.savefig(target.tmp, format="png", dpi=100)
        return [*paths, png]

    def text(self, worst: int = REPORT_WORST, pairs: int = REPORT_PAIRS) -> str:
        """The worst species and the most confused pairs as plain text (for a saved notebook)."""
        table, label = self.per_species, MEASURE_LABELS[self.measure]
        no_positive = table.loc[table["positives"] == 0, "species"].tolist()
        undefined = table.loc[table[self.measure].isna() & (table["positives"] > 0), "species"]
        mean = table[self.measure].mean()  # NaN skipped
        scored = len(table) - len(no_positive) - len(undefined)
        what = (
            "with positives (unpadded AP, not the padded cmAP)"
            if self.measure == "ap"
            else "with positives (their mean: the competition's macro ROC-AUC of these clips)"
        )
        lines = [f"out-of-fold {label} per species: mean {mean:.4f} over {scored} species {what}"]
        if no_positive:
            shown = ", ".join(no_positive[:10]) + (" ..." if len(no_positive) > 10 else "")
            lines.append(f"no out-of-fold positive ({label} NaN): {len(no_positive)}: {shown}")
        if len(undefined):
            lines.append(
                f"positive in every out-of-fold clip ({label} undefined): {list(undefined)}"
            )
        lines.append(
            f"\n{worst} worst species (positives: out-of-fold clips labelled with the species; "
            "train_recordings: recordings with it as primary label, all folds):"
        )
        lines.append(self.worst(worst).to_string(index=False))
        lines.append(
            "\nmost confused pairs (count: clips of `species` whose top-scoring wrong species "
            "is `confused_with`; above: of those, scored above `species`):"
        )
        lines.append(self.pairs.head(pairs).to_string(index=False) if len(self.pairs) else "none")
        return "\n".join(lines)


def species_ap(
    truth: np.ndarray, probs: np.ndarray, classes: list[str], train_recordings: pd.Series
) -> pd.DataFrame:
    """SPECIES_AP_COLUMNS, lowest AP first (NaN last). truth (clips, classes) bool,
    probs (clips, classes); train_recordings: recordings per species (missing: 0)."""
    return species_scores(truth, probs, classes, train_recordings, "ap")


def species_scores(
    truth: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    train_recordings: pd.Series,
    measure: str = "ap",
) -> pd.DataFrame:
    """species_columns(measure), lowest first (NaN last): per species AP or ROC-AUC of its
    column; NaN without a positive (and, for ROC-AUC, without a negative)."""
    rows = []
    for k, name in enumerate(classes):
        positives = int(truth[:, k].sum())
        value = np.nan
        if positives and measure == "ap":
            value = average_precision_score(truth[:, k], probs[:, k])
        elif positives and positives < len(truth) and measure == "roc_auc":
            value = roc_auc_score(truth[:, k], probs[:, k])
        rows.append((name, float(value), int(train_recordings.get(name, 0)), positives))
    frame = pd.DataFrame(rows, columns=species_columns(measure))
    order = frame.sort_values([measure, "species"], na_position="last", kind="stable")
    return order.reset_index(drop=True)


def confused_pairs(
    primary: list[str], truth: np.ndarray, probs: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """CONFUSED_PAIR_COLUMNS, most frequent first. `primary`: each clip's primary label;
    truth (clips, classes) bool: every label of the clip (never counted as wrong)."""
    column = {name: k for k, name in enumerate(classes)}
    wrong = np.where(truth, -np.inf, probs.astype(float))  # (clips, classes)
    counts: dict[tuple[str, str], list[int]] = {}
    clips: dict[str, int] = {}
    for row, label in enumerate(primary):
        if label not in column or not np.isfinite(wrong[row]).any():
            continue  # a species outside the classes, or every class is a label
        clips[label] = clips.get(label, 0) + 1
        top = int(np.argmax(wrong[row]))  # first in class order on ties
        entry = counts.setdefault((label, classes[top]), [0, 0])
        entry[0] += 1
        entry[1] += int(probs[row, top] > probs[row, column[label]])
    rows = [(a, b, n, clips[a], above) for (a, b), (n, above) in counts.items()]
    frame = pd.DataFrame(rows, columns=CONFUSED_PAIR_COLUMNS)
    order = ["count", "above", "species", "confused_with"]
    return frame.sort_values(order, ascending=[False, False, True, True]).reset_index(drop=True)


def species_report(
    oof: pd.DataFrame, table: pd.DataFrame, classes: list[str], config: Config
) -> SpeciesReport:
    """The report of out-of-fold predictions `oof` (row_id + one column per class) against the
    run's training table (row_id, primary_label[, secondary_labels]), labelled as the run was."""
    missing = [c for c in ["row_id", *classes] if c not in oof.columns]
    if missing:
        raise ValueError(
            f"out-of-fold table lacks columns {missing[:5]} (as lib.train_folds writes it)"
        )
    known = table.set_index("row_id")
    unknown = sorted(set(oof["row_id"]) - set(known.index))
    if unknown:
        raise ValueError(f"out-of-fold rows not in the training table, e.g. {unknown[:3]}")
    rows = known.loc[oof["row_id"]].reset_index()
    truth = make_targets(rows, classes, config) > 0  # (clips, classes)
    probs = oof[classes].to_numpy(dtype=float)  # (clips, classes)
    recordings = table["primary_label"].astype(str).value_counts()
    if config.metric not in SPECIES_MEASURES:
        raise KeyError(f"no per-species measure for metric {config.metric!r} (SPECIES_MEASURES)")
    measure = SPECIES_MEASURES[config.metric]
    return SpeciesReport(
        species_scores(truth, probs, classes, recordings, measure),
        confused_pairs([str(v) for v in rows["primary_label"]], truth, probs, classes),
        measure,
    )


def run_species_report(run_dir: str | Path) -> SpeciesReport:
    """The report of a run folder (oof.csv, folds.csv, classes.json, config.json)."""
    run_dir = Path(run_dir)
    needed = ["oof.csv", "folds.csv", "classes.json", "config.json"]
    absent = [name for name in needed if not (run_dir / name).is_file()]
    if absent:
        raise FileNotFoundError(f"{run_dir}: no {', '.join(absent)}; finish a fold first")
    classes = json.loads((run_dir / "classes.json").read_text())
    config = Config.load(run_dir / "config.json")
    labels = {"primary_label": str, "secondary_labels": str}  # "41778" must stay a string
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"primary_label": str})
    table = pd.read_csv(run_dir / "folds.csv", keep_default_na=False, dtype=labels)
    return species_report(oof, table, classes, config)


def plot_ap_vs_recordings(
    table: pd.DataFrame, label_worst: int = REPORT_WORST, measure: str = "ap"
) -> Figure:
    """The per-species `measure` (AP or ROC-AUC) against training recordings (log x), the
    worst species named. A bare Figure (no pyplot): no global state, no GUI backend."""
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    scored, label = table.dropna(subset=[measure]), MEASURE_LABELS[measure]
    x = scored["train_recordings"].clip(lower=1)  # log axis: 0 recordings drawn at 1
    ax.scatter(x, scored[measure], s=14, alpha=0.7)
    for _, row in scored.head(label_worst).iterrows():
        ax.annotate(row["species"], (max(row["train_recordings"], 1), row[measure]), fontsize=7)
    ax.set_xscale("log")
    ax.set(
        xlabel="training recordings (log)",
        ylabel=f"out-of-fold {label}",
        title=f"{label} per species ({len(table) - len(scored)} without a score not shown)",
        ylim=(-0.02, 1.02),
    )
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
