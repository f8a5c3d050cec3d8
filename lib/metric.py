"""The BirdCLEF metrics, re-stated as small pure functions, and a dispatch by name.

2023 scores with padded cmAP, 2024-2026 with macro ROC-AUC over the classes that have a
positive (Kaggle's `birdclef-roc-auc`); a competition profile (lib.competitions) names its
metric and `score` calls it. Both align rows by `row_id` and columns by name, and reject the
same malformed submissions with the same messages (`aligned_arrays`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def _check_row_ids(solution: pd.DataFrame, submission: pd.DataFrame) -> None:
    for name, frame in (("solution", solution), ("submission", submission)):
        if "row_id" not in frame.columns:
            raise ValueError(f"{name} has no 'row_id' column")
        if frame["row_id"].duplicated().any():
            dup = frame.loc[frame["row_id"].duplicated(), "row_id"].iloc[0]
            raise ValueError(f"{name} has duplicated row_id {dup!r}")


def aligned_arrays(
    solution: pd.DataFrame, submission: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(species, truth, scores): the submission's rows and columns put in the solution's order.

    Missing or extra rows or columns, a duplicated or absent `row_id`, a non-numeric
    submission column and NaN or infinite scores raise ValueError naming what is wrong.
    """
    _check_row_ids(solution, submission)
    species = [c for c in solution.columns if c != "row_id"]
    missing_cols = sorted(set(species) - set(submission.columns))
    extra_cols = sorted(set(submission.columns) - set(species) - {"row_id"})
    if missing_cols or extra_cols:
        raise ValueError(
            f"submission columns differ from the solution: missing {missing_cols[:5]}"
            f"{'...' if len(missing_cols) > 5 else ''}, extra {extra_cols[:5]}"
        )
    sub = submission.set_index("row_id")
    sol = solution.set_index("row_id")
    missing_rows = sol.index.difference(sub.index)
    extra_rows = sub.index.difference(sol.index)
    if len(missing_rows) or len(extra_rows):
        raise ValueError(
            f"submission rows differ from the solution: {len(missing_rows)} missing "
            f"(e.g. {list(missing_rows[:3])}), {len(extra_rows)} extra "
            f"(e.g. {list(extra_rows[:3])})"
        )
    sub = sub.loc[sol.index, species]
    text = [c for c in species if not pd.api.types.is_numeric_dtype(sub[c])]
    if text:
        raise ValueError(
            f"submission column(s) {text[:5]} are not numeric (dtype {sub[text[0]].dtype}); "
            "every class column must hold probabilities"
        )
    truth = sol[species].to_numpy(dtype=float)
    scores = sub.to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError("submission holds NaN or infinite values")
    return species, truth, scores


def padded_cmap(solution: pd.DataFrame, submission: pd.DataFrame, padding_factor: int = 5) -> float:
    """Macro average precision after appending `padding_factor` rows of ones to both frames.

    Rows are aligned by `row_id`, columns by name (the submission may order them differently).
    The padding makes a species with no positive in the solution score ~1.0 instead of being
    undefined, exactly as Kaggle's scorer does.
    """
    species, truth, scores = aligned_arrays(solution, submission)
    pad = np.ones((padding_factor, len(species)))
    return float(
        average_precision_score(np.vstack([truth, pad]), np.vstack([scores, pad]), average="macro")
    )


def roc_auc(solution: pd.DataFrame, submission: pd.DataFrame) -> float:
    """Macro ROC-AUC over the solution's classes with at least one positive (2024-2026).

    As Kaggle's scorer: classes without a positive in the solution are skipped (no padding),
    the rest averaged with equal weight. The solution must be 0/1. No scored class at all, or
    a class whose every row is positive (ROC-AUC undefined), is a ValueError naming it.
    """
    species, truth, scores = aligned_arrays(solution, submission)
    if not np.isin(truth, (0.0, 1.0)).all():
        raise ValueError("solution holds values other than 0 and 1; it must be 0/1 labels")
    positives = truth.sum(axis=0)
    scored = np.flatnonzero(positives > 0)
    if len(scored) == 0:
        raise ValueError(
            f"no class has a positive row in the solution ({len(truth)} rows, {len(species)} "
            "classes): ROC-AUC is undefined"
        )
    full = [species[k] for k in scored if positives[k] == len(truth)]
    if full:
        raise ValueError(
            f"class(es) {full[:5]} are positive in every solution row: ROC-AUC is undefined; "
            "score on rows that include negatives"
        )
    return float(roc_auc_score(truth[:, scored], scores[:, scored], average="macro"))


METRICS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], float]] = {
    "padded_cmap": padded_cmap,
    "roc_auc": roc_auc,
}


def score(metric_name: str, solution: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The named metric (a competition profile's `metric`) of `submission` against `solution`."""
    if metric_name not in METRICS:
        raise KeyError(f"unknown metric {metric_name!r}; known metrics: {list(METRICS)}")
    return METRICS[metric_name](solution, submission)
