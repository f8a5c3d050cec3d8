"""benchmarks/bench_quality.py: the table's arithmetic, and a --quick smoke run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib.audio import load_audio
from lib.features import LogMel
from lib.metric import padded_cmap
from lib.model import model_from_checkpoint, window_probabilities

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_quality as bq  # noqa: E402


def test_results_table_mean_sd_and_difference_to_the_full_recipe():
    full, no_noise = bq.VARIANTS[0].name, bq.VARIANTS[1].name
    results = [
        bq.RunResult(full, 0, 0.60, 0.90, 1.0),
        bq.RunResult(full, 1, 0.70, 0.94, 1.0),
        bq.RunResult(no_noise, 0, 0.50, 0.91, 1.0),
        bq.RunResult(no_noise, 1, 0.54, 0.93, 1.0),
    ]
    lines = bq.results_table(results, untrained=0.3).splitlines()
    row = "| {} (n=2) | {} | {} | {} | {} |"
    zero = "+0.0000 ± 0.0000"
    assert lines[2] == row.format(full, "0.6500 ± 0.0707", zero, "0.9200 ± 0.0283", zero)
    # paired by seed: -0.10 and -0.16 (soundscapes), +0.01 and -0.01 (out-of-fold)
    assert lines[3] == row.format(
        no_noise, "0.5200 ± 0.0283", "-0.1300 ± 0.0424", "0.9200 ± 0.0141", "+0.0000 ± 0.0141"
    )
    assert lines[4].startswith("| untrained model (random weights) | 0.3000 |")


def reference_soundscape_cmap(run: Path, data: Path) -> float:
    """The padded cmAP of a run's fold models on the hidden test, computed the slow way here:
    one 5-s window at a time (the last one zero-padded), the folds' window probabilities
    averaged, the columns matched to the solution by name."""
    models = [model_from_checkpoint(p) for p in sorted(run.glob("fold*/best.pt"))]
    config, classes = models[0][1], models[0][2]
    features, size = LogMel(config), 5 * config.sample_rate
    rows = {}
    for path in sorted((data / "birdclef-2023" / "test_soundscapes").glob("*.ogg")):
        wave = load_audio(path, config.sample_rate)
        for k in range(-(-len(wave) // size)):
            window = np.zeros(size, np.float32)
            part = wave[k * size : (k + 1) * size]
            window[: len(part)] = part
            mel = features(torch.from_numpy(window)[None])
            with torch.no_grad():
                probs = [window_probabilities(m(mel), config.window_output) for m, *_ in models]
            rows[f"{path.stem}_{5 * (k + 1)}"] = torch.stack(probs).mean(0)[0].numpy()
    solution = pd.read_csv(data / "solution.csv")
    submission = pd.DataFrame.from_dict(rows, orient="index", columns=classes)
    submission = submission.loc[solution["row_id"], list(solution.columns[1:])]
    return padded_cmap(solution, submission.reset_index(names="row_id"))


def test_quick_run_trains_every_variant(tmp_path, capsys):
    assert bq.main(["--quick", "--seeds", "0", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    results = pd.read_csv(tmp_path / "results.csv").set_index("variant")
    assert list(results.index) == [v.name for v in bq.VARIANTS]
    for variant in bq.VARIANTS:
        assert f"| {variant.name} (n=1) |" in out
        run = tmp_path / "runs" / "seed0" / variant.slug
        summary = json.loads((run / "summary.json").read_text())
        assert results.loc[variant.name, "oof_cmap"] == pytest.approx(summary["oof_cmap"])
        config = model_from_checkpoint(run / "fold0" / "best.pt")[1]
        for knob, value in {**bq.QUICK_CONFIG, **variant.changes}.items():
            assert getattr(config, knob) == value, (variant.name, knob)  # the ablation happened
    full = tmp_path / "runs" / "seed0" / "full"
    expected = reference_soundscape_cmap(full, tmp_path / "data")
    assert results.loc["full recipe", "soundscape_cmap"] == pytest.approx(expected, abs=1e-4)
    assert "untrained model" in out
    # pre-training ran once for the seed, shared by the variants that use it
    runs = sorted(p.name for p in (tmp_path / "runs" / "seed0").iterdir())
    assert runs == sorted(["pretrain", *(v.slug for v in bq.VARIANTS)])
    assert (tmp_path / "runs" / "seed0" / "pretrain" / "fold0" / "best.pt").is_file()


def test_a_later_seed_adds_to_the_earlier_results(tmp_path):
    rows = [bq.RunResult("full recipe", s, 0.5, 0.8, 1.0) for s in (0, 1)]
    pd.DataFrame([r.__dict__ for r in rows]).to_csv(tmp_path / "results.csv", index=False)
    kept = bq.earlier_results(tmp_path / "results.csv", seeds=[1, 2])
    assert kept == [rows[0]]  # seed 1 is run again, so only seed 0 is kept
    assert bq.earlier_results(tmp_path / "nothing.csv", seeds=[0]) == []
