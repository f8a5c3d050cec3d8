"""`build_kernels.py --rehearse --hard` as the README runs it, end to end (CI only)."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from workbench_support import REPO

import build_kernels as bk
from lib.metric import padded_cmap
from workbench.rehearsal import REHEARSAL_HARD_MIN_SCORE
from workbench.synthetic.hard import HardSpec

PASSED = re.compile(r"rehearsal passed: padded cmAP (\d\.\d{4}) >= (\d\.\d+)")


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "kernels" / "train.py").is_file(), reason="no kernels/train.py")
@pytest.mark.skipif(
    not os.environ.get("BIRDCLEF_FULL_REHEARSAL"),
    reason="the README's hard rehearsal (6.5-8 min on 2 cores with OMP_NUM_THREADS=1, 19 "
    "without it): set BIRDCLEF_FULL_REHEARSAL=1",
)
def test_hard_rehearsal_reaches_its_min_score(tmp_path, capsys):
    """The trained folds must reach the hard setting's --min-score (0.40; untrained models
    score ~0.32 on the same test), and the score printed must be that of the submission the
    inference notebook wrote, scored here against the hidden truth."""
    work = tmp_path / "w"
    argv = ["--out", str(tmp_path / "build"), "--workdir", str(work), "--rehearse", "--hard"]
    code = bk.main(argv)
    out, err = capsys.readouterr()
    print(out[-3000:], err[-3000:])  # the rehearsal's report, in the test log
    assert code == 0, err[-3000:]
    (match,) = PASSED.findall(out)
    score, bar = float(match[0]), float(match[1])
    assert bar == REHEARSAL_HARD_MIN_SCORE and score >= bar
    solution = pd.read_csv(work / "solution.csv")
    submission = pd.read_csv(work / "working" / "infer" / "submission.csv")
    spec = HardSpec()
    assert len(solution) == len(submission) == spec.n_soundscapes * spec.soundscape_seconds / 5
    assert padded_cmap(solution, submission) == pytest.approx(score, abs=5e-5)
