"""Which species a run fails on: out-of-fold AP per species, AP against training recordings,
the worst species and the species pairs most often confused.

Read from a finished run folder (lib.run_dir): `oof.csv` (row_id, fold, primary_label, one
probability column per species), `folds.csv` (the run's training table), `classes.json`,
`config.json`. Definitions, stated once here and in the text the notebook shows:

- labels of a clip: its primary label, plus its secondary labels when the run trained with
  them (`Config.use_secondary_labels`): the same truth as the run's out-of-fold cmAP.
- `positives`: out-of-fold clips (one per validated recording) of which the species is a label.
- `ap`: average precision of the species' probability column over all out-of-fold clips,
  unpadded (sklearn `average_precision_score`). A species with no positive has no AP: NaN
  (unlike the padded cmAP, which scores it ~1). Species rarely validated have noisy APs.
- `train_recordings`: recordings in the run's table whose primary label is the species (all
  folds together, fold -1 included; each fold trains on the recordings outside its own fold).
- confused pair (A, B): for a clip whose primary label is A, B is the highest-scoring species
  that is not one of the clip's labels (ties: the first in class order). `count`: clips of A
  whose top wrong species is B; `above`: of those, clips where B also scored above A (the
  model ranked B first: a real mistake, not only the runner-up).

Files written by `SpeciesReport.save(run_dir)` (atomically): per_species_ap.csv,
confused_pairs.csv, per_species_ap.png.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score

from lib.atomic import AtomicTarget
from lib.config import Config
from lib.dataset import make_targets

SPECIES_AP_COLUMNS = ["species", "ap", "train_recordings", "positives"]
CONFUSED_PAIR_COLUMNS = ["species", "confused_with", "count", "clips", "above"]
REPORT_WORST = 10  # species listed as the worst
REPORT_PAIRS = 10  # confused pairs listed


@dataclass(frozen=True)
class SpeciesReport:
    """Per-species AP (SPECIES_AP_COLUMNS, worst first) and confused pairs
    (CONFUSED_PAIR_COLUMNS, most frequent first) of one run's out-of-fold predictions."""

    species_ap: pd.DataFrame
    pairs: pd.DataFrame

    def worst(self, n: int = REPORT_WORST) -> pd.DataFrame:
        """The n species with the lowest AP (species without positives left out)."""
        return self.species_ap.dropna(subset=["ap"]).head(n)

    def save(self, run_dir: str | Path) -> list[Path]:
        run_dir = Path(run_dir)
        paths = [run_dir / n for n in ("per_species_ap.csv", "confused_pairs.csv")]
        for path, frame in zip(paths, (self.species_ap, self.pairs), strict=True):
            with AtomicTarget(path) as target:
                frame.to_csv(target.tmp, index=False)
        png = run_dir / "per_species_ap.png"
        with AtomicTarget(png) as target:
            plot_ap_vs_recordings(self.species_ap).savefig(target.tmp, format="png", dpi=100)
        return [*paths, png]

    def text(self, worst: int = REPORT_WORST, pairs: int = REPORT_PAIRS) -> str:
        """The worst species and the most confused pairs as plain text (for a saved notebook)."""
        table = self.species_ap
        no_positive = table.loc[table["ap"].isna(), "species"].tolist()
        mean_ap = table["ap"].mean()  # NaN skipped
        lines = [
            f"out-of-fold AP per species: mean {mean_ap:.4f} over "
            f"{len(table) - len(no_positive)} species with positives (unpadded AP, "
            "not the padded cmAP)",
        ]
        if no_positive:
            shown = ", ".join(no_positive[:10]) + (" ..." if len(no_positive) > 10 else "")
            lines.append(f"no out-of-fold positive (AP NaN): {len(no_positive)}: {shown}")
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
    rows = []
    for k, name in enumerate(classes):
        positives = int(truth[:, k].sum())
        ap = average_precision_score(truth[:, k], probs[:, k]) if positives else np.nan
        rows.append((name, float(ap), int(train_recordings.get(name, 0)), positives))
    frame = pd.DataFrame(rows, columns=SPECIES_AP_COLUMNS)
    return frame.sort_values(["ap", "species"], na_position="last", kind="stable").reset_index(
        drop=True
    )


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
    recordings = table["primary_label"].value_counts()
    return SpeciesReport(
        species_ap(truth, probs, classes, recordings),
        confused_pairs(list(rows["primary_label"]), truth, probs, classes),
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
    oof = pd.read_csv(run_dir / "oof.csv")
    table = pd.read_csv(run_dir / "folds.csv", keep_default_na=False)
    return species_report(oof, table, classes, config)


def plot_ap_vs_recordings(table: pd.DataFrame, label_worst: int = REPORT_WORST) -> Figure:
    """AP against training recordings (log x), the worst species named. A bare Figure (no
    pyplot): no global state, no GUI backend."""
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    scored = table.dropna(subset=["ap"])
    x = scored["train_recordings"].clip(lower=1)  # log axis: 0 recordings drawn at 1
    ax.scatter(x, scored["ap"], s=14, alpha=0.7)
    for _, row in scored.head(label_worst).iterrows():
        ax.annotate(row["species"], (max(row["train_recordings"], 1), row["ap"]), fontsize=7)
    ax.set_xscale("log")
    ax.set(
        xlabel="training recordings (log)",
        ylabel="out-of-fold AP",
        title=f"AP per species ({len(table) - len(scored)} without positives not shown)",
        ylim=(-0.02, 1.02),
    )
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
