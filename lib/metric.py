"""Padded cmAP: Kaggle's BirdCLEF 2023 metric, re-stated as one small pure function."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score


def padded_cmap(solution: pd.DataFrame, submission: pd.DataFrame, padding_factor: int = 5) -> float:
    """Macro average precision after appending `padding_factor` rows of ones to both frames.

    Rows are aligned by `row_id`, columns by name (the submission may order them differently).
    The padding makes a species with no positive in the solution score ~1.0 instead of being
    undefined, exactly as Kaggle's scorer does.
    """
    for name, frame in (("solution", solution), ("submission", submission)):
        if "row_id" not in frame.columns:
            raise ValueError(f"{name} has no 'row_id' column")
        if frame["row_id"].duplicated().any():
            dup = frame.loc[frame["row_id"].duplicated(), "row_id"].iloc[0]
            raise ValueError(f"{name} has duplicated row_id {dup!r}")
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
    truth = sol[species].to_numpy(dtype=float)
    scores = sub.to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError("submission holds NaN or infinite values")
    pad = np.ones((padding_factor, len(species)))
    return float(
        average_precision_score(np.vstack([truth, pad]), np.vstack([scores, pad]), average="macro")
    )
