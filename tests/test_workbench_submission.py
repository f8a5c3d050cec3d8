"""workbench/submission.py: what is wrong with a submission.csv, each problem named."""

from __future__ import annotations

import pandas as pd

from workbench.submission import (
    check_submission,
    expected_columns,
    label_problems,
    rows_per_file_problems,
)


def test_check_submission_reports_each_problem(tmp_path):
    solution = pd.DataFrame({"row_id": ["s_5", "s_10"], "a": [1, 0], "b": [0, 1]})
    columns = ["row_id", "a", "b"]
    good = tmp_path / "good.csv"
    pd.DataFrame({"row_id": ["s_5", "s_10"], "a": [0.9, 0.1], "b": [0.2, 0.8]}).to_csv(
        good, index=False
    )
    assert check_submission(good, columns, solution) == []
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"row_id": ["s_5", "s_5"], "b": [1.0, float("nan")], "a": ["x", 0]}).to_csv(
        bad, index=False
    )
    problems = " | ".join(check_submission(bad, columns, solution))
    assert "columns differ" in problems and "duplicated" in problems
    assert "missing ['s_10']" in problems and "NaN" in problems
    assert "was not written" in check_submission(tmp_path / "none.csv", columns, solution)[0]
    high = tmp_path / "high.csv"
    pd.DataFrame({"row_id": ["s_5", "s_10"], "a": [1.0, 0.1], "b": [0.2, 0.8]}).to_csv(
        high, index=False
    )
    assert "outside [0, 1)" in check_submission(high, columns, solution)[0]


def test_expected_columns_follow_the_sample_submission(tmp_path):
    solution = pd.DataFrame({"row_id": ["s_5"], "b": [1], "a": [0]})
    assert expected_columns(tmp_path, solution) == ["row_id", "b", "a"]
    pd.DataFrame(columns=["row_id", "a", "b"]).to_csv(
        tmp_path / "sample_submission.csv", index=False
    )
    assert expected_columns(tmp_path, solution) == ["row_id", "a", "b"]


def test_rows_per_file_and_labels_in_the_header():
    sub = pd.DataFrame({"row_id": ["BC_a_5", "BC_a_10", "BC_b_5"]})
    assert rows_per_file_problems(sub, 2) == ["rows per test file must be 2: BC_b: 1"]
    assert rows_per_file_problems(sub.iloc[:2], 2) == []
    assert label_problems(["41778", "abc1"], ["row_id", "41778", "abc1"]) == []
    problems = label_problems(["41778", "abc1"], ["row_id", "41778.0", "abc1"])
    assert problems == ["training labels missing from the submission's header: ['41778']"]
