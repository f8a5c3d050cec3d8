"""Checking a submission.csv before it is scored: columns, row ids, probability range.

What Kaggle would reject (or score as garbage) is found here, with the reason, before scoring.
"""

from __future__ import annotations

from pathlib import Path


def expected_columns(competition: Path, solution) -> list[str]:
    """row_id + species in sample_submission.csv's order (else the solution's)."""
    import pandas as pd

    sample = competition / "sample_submission.csv"
    if sample.is_file():  # header names as written: a numeric label stays "41778"
        return [str(c) for c in pd.read_csv(sample, nrows=0, dtype=str).columns]
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


def rows_per_file_problems(submission, rows_per_file: int) -> list[str]:
    """Test files whose row count is not the year's (profile.rows_per_test_file): a file of
    the year's length has exactly that many 5-second rows."""
    stems = submission["row_id"].astype(str).str.rsplit("_", n=1).str[0]
    counts = stems.value_counts()
    wrong = counts[counts != rows_per_file]
    if wrong.empty:
        return []
    listed = ", ".join(f"{stem}: {n}" for stem, n in wrong.head(3).items())
    return [f"rows per test file must be {rows_per_file}: {listed}"]


def label_problems(train_labels: list[str], columns: list[str]) -> list[str]:
    """Training labels (read as strings, e.g. the iNat id '41778') missing from the
    submission's header: a label read as a number would be written as '41778.0' or lost."""
    missing = sorted(set(train_labels) - set(columns))
    if not missing:
        return []
    return [f"training labels missing from the submission's header: {missing[:5]}"]
