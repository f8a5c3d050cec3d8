"""Checking a submission.csv before it is scored: columns, row ids, probability range.

What Kaggle would reject (or score as garbage) is found here, with the reason, before scoring.
"""

from __future__ import annotations

from pathlib import Path


def expected_columns(competition: Path, solution) -> list[str]:
    """row_id + species in sample_submission.csv's order (else the solution's)."""
    import pandas as pd

    sample = competition / "sample_submission.csv"
    if sample.is_file():
        return list(pd.read_csv(sample, nrows=0).columns)
    return list(solution.columns)


def check_submission(path: Path, columns: list[str], solution) -> list[str]:
    """Problems with a submission.csv (empty list: fine): columns, row ids, probability range."""
    import numpy as np
    import pandas as pd

    if not path.is_file():
        return [f"{path} was not written (the inference notebook must write submission.csv)"]
    sub = pd.read_csv(path)
    problems = []
    if list(sub.columns) != columns:
        problems.append(f"columns differ from sample_submission.csv: {list(sub.columns)[:5]}...")
    if "row_id" not in sub.columns:
        return problems + ["no row_id column"]
    if sub.row_id.duplicated().any():
        problems.append(f"duplicated row_id, e.g. {sub.row_id[sub.row_id.duplicated()].iloc[0]}")
    missing = sorted(set(solution.row_id) - set(sub.row_id))
    extra = sorted(set(sub.row_id) - set(solution.row_id))
    if missing or extra:
        problems.append(f"row_id mismatch: missing {missing[:3]}, extra {extra[:3]}")
    numeric = sub.drop(columns="row_id").apply(pd.to_numeric, errors="coerce")  # text -> NaN
    values = numeric.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        problems.append("NaN or infinite probabilities")
    elif values.size and (values.min() < 0 or values.max() >= 1):
        problems.append(f"probabilities outside [0, 1): min {values.min()}, max {values.max()}")
    return problems
