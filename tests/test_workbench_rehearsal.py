"""workbench/rehearsal.py: the Kaggle loop run locally on a synthetic competition."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import TINY_BACKBONE
from workbench_support import REPO, build_into, write

import build_kernels as bk
from lib.competitions import profile
from lib.metric import padded_cmap, roc_auc
from lib.onnxruntime_setup import ONNXRUNTIME_VERSION
from lib.paths import MODELS_DATASET_SLUG, WHEELS_DATASET_SLUG
from workbench.errors import BuildError
from workbench.kaggle_image import find_python, get_image, image_venv
from workbench.rehearsal import (
    HIDDEN_TEST_WINDOWS,
    REHEARSAL_INFER_CONFIG,
    RehearsalOptions,
    check_rehearsable,
    default_min_score,
    hidden_test_windows,
    make_synthetic,
    prepare_workdir,
    projected_minutes,
    rehearse,
    rehearse_inputs,
    run_kernel,
)
from workbench.submission import check_submission, expected_columns
from workbench.wheels import default_wheel_cache

FAKE_TRAIN = """# %%
import pandas as pd

from lib.config import Config
from lib.paths import find_competition, working_root

# %%
cfg = Config.from_env()
classes = sorted(pd.read_csv(find_competition() / "train_metadata.csv").primary_label.unique())
out = working_root()
for fold in range(cfg.n_folds):
    (out / f"fold{fold}.onnx").write_bytes(b"not a real model")
(out / "classes.txt").write_text("\\n".join(classes) + "\\n")
cfg.save(out / "config.json")
(out / "checkpoint.pt").write_bytes(b"not exported")
"""
FAKE_INFER = """# %%
import json

import pandas as pd
import soundfile as sf

from lib.paths import MODELS_DATASET_SLUG, find_competition, find_dataset, working_root

# %%
models = find_dataset(MODELS_DATASET_SLUG, required_file="*.onnx")
classes = (models / "classes.txt").read_text().split()
rows = []
for path in sorted((find_competition() / "test_soundscapes").glob("*.ogg")):
    rows += [f"{path.stem}_{end}" for end in range(5, int(sf.info(str(path)).duration) + 1, 5)]
sub = pd.DataFrame(0.5, index=range(len(rows)), columns=classes)
sub.insert(0, "row_id", rows)
sub.to_csv(working_root() / "submission.csv", index=False)
(working_root() / "timing.json").write_text(json.dumps({"windows": len(rows), "seconds": 0.01}))
"""
SMALL_SPEC = {
    "n_species": 3,
    "recordings_per_species": [2, 3],
    "recording_seconds": [5.0, 6.0],
    "n_soundscapes": 1,
    "soundscape_seconds": 20.0,
    "minor_species": 0,
    "with_pretrain_sources": False,
}


WHEEL_CACHE = default_wheel_cache(os.environ)  # the builder's: wheels downloaded once


def options(tmp_path: Path, **changes) -> RehearsalOptions:
    settings = {"workdir": tmp_path / "w", "wheel_cache": WHEEL_CACHE}
    return RehearsalOptions(**{**settings, "spec_overrides": SMALL_SPEC, **changes})


def stand_in_kernels(tmp_path: Path, infer: str = FAKE_INFER) -> dict[str, Path]:
    write(tmp_path / "kernels" / "train.py", FAKE_TRAIN)
    write(tmp_path / "kernels" / "infer.py", infer)
    return build_into(tmp_path, kernels_dir=tmp_path / "kernels", owner="me")


def test_rehearsal_end_to_end_with_stand_in_kernels(tmp_path, capsys):
    """The whole rehearsal loop on stand-in notebooks that follow the real kernels' contract;
    the stand-in predicts 0.5 everywhere, so its score is that of a constant submission."""
    result = rehearse(stand_in_kernels(tmp_path), options(tmp_path))
    work = tmp_path / "w"
    solution = pd.read_csv(work / "solution.csv")
    constant = solution.astype({c: float for c in solution.columns[1:]})
    constant.iloc[:, 1:] = 0.5
    assert result.score == pytest.approx(padded_cmap(solution, constant))
    assert result.windows == len(solution) == 4 and result.infer_s > 0
    models = sorted(p.name for p in (work / "input" / MODELS_DATASET_SLUG).iterdir())
    assert models == ["classes.txt", "config.json"] + [f"fold{i}.onnx" for i in range(5)]
    assert not list((work / "input").rglob("solution.csv"))  # the truth is out of sight
    assert (work / "executed" / "infer.ipynb").is_file()
    out = capsys.readouterr().out
    assert "padded cmAP" in out and "environment: the builder's venv" in out
    assert ("threads: 1 per kernel" in out) != bool(os.environ.get("OMP_NUM_THREADS"))
    assert not list((work / "envs").iterdir())  # each notebook's overlay is gone


def test_bad_submission_fails_the_rehearsal_with_the_problems(tmp_path):
    broken = FAKE_INFER.replace("sub.insert(0, ", "sub.insert(0, 'wrong', rows)\n# ")
    with pytest.raises(BuildError, match="columns differ.*no row_id column"):
        rehearse(stand_in_kernels(tmp_path, broken), options(tmp_path))


def test_rehearsal_failure_names_the_executed_copy(tmp_path):
    folders = stand_in_kernels(tmp_path, "# %%\nraise RuntimeError('inference broke')\n")
    with pytest.raises(BuildError, match="notebook infer failed") as err:
        rehearse(folders, options(tmp_path))
    executed = tmp_path / "w" / "executed" / "infer.ipynb"
    assert str(executed) in str(err.value)
    assert "inference broke" in executed.read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config_overrides": {"no_such_knob": 1}}, "--rehearse-config: .*no_such_knob"),
        ({"spec_overrides": {"n_species": 0}}, "--rehearse-spec: .*n_species must be >= 1"),
        ({"spec_overrides": {"colour": "red"}}, "--rehearse-spec: .*colour"),
    ],
)
def test_bad_overrides_fail_before_anything_runs(tmp_path, change, message):
    folders = {"train": tmp_path, "infer": tmp_path}
    with pytest.raises(BuildError, match=message):
        rehearse(folders, options(tmp_path, **change))
    assert not (tmp_path / "w").exists()


HAS_INFER = (REPO / "kernels" / "infer.py").is_file()


def run_real_inference(tmp_path: Path, base_python=None, wheels: str = "all") -> tuple:
    """The second half of the rehearsal with the real kernels/infer.py: tiny untrained fold
    models exported by lib.export, the notebook run offline without the repository in its own
    overlay on `base_python`, with the built wheels dataset attached ("all"), none ("none"), or
    one holding only onnxruntime wheels of other Pythons ("wrong-abi").
    Returns (layout, competition, working folder, seconds)."""
    from lib.config import Config
    from lib.export import export_run
    from lib.model import build_model, save_checkpoint

    folders = build_into(tmp_path, owner="me")
    layout = prepare_workdir(tmp_path / "w")
    competition = make_synthetic(layout, SMALL_SPEC)
    classes = sorted(pd.read_csv(competition / "train_metadata.csv").primary_label.unique())
    config = Config().replace(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)
    for fold in range(2):
        model = build_model(config, len(classes), pretrained=False)
        save_checkpoint(tmp_path / "run" / f"fold{fold}" / "best.pt", model, config, classes)
    export_run(tmp_path / "run", layout.working_dir("train") / "models")
    rehearse_inputs(layout, layout.working_dir("train"), WHEEL_CACHE, base_python)
    if wheels == "none":
        shutil.rmtree(layout.input / WHEELS_DATASET_SLUG)
    elif wheels == "wrong-abi":  # keep the other Pythons' wheels only
        python = base_python or sys.executable
        abi = subprocess.run(
            [python, "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        for wheel in (layout.input / WHEELS_DATASET_SLUG).glob(f"onnxruntime-*-{abi}-*.whl"):
            wheel.unlink()
    working, seconds = run_kernel(
        "infer", folders["infer"], layout, REHEARSAL_INFER_CONFIG, offline=True,
        base_python=base_python,
    )  # fmt: skip
    return layout, competition, working, seconds


def assert_valid_submission(layout, competition, working: Path) -> None:
    solution = pd.read_csv(layout.solution)
    columns = expected_columns(competition, solution)
    assert check_submission(working / "submission.csv", columns, solution) == []
    assert (layout.executed / "infer.ipynb").is_file()


def install_cell_output(layout) -> str:
    """What the executed notebook printed (the install cell says which onnxruntime it got)."""
    nb = nbformat.read(layout.executed / "infer.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return "".join(o.get("text", "") for o in outputs)


@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
def test_real_inference_notebook_in_the_rehearsal_plumbing(tmp_path):
    """On the builder's venv with onnxruntime hidden: the notebook's install cell installs it
    from the wheels dataset (made for this Python) into its overlay (untrained folds: the score
    says nothing, so it is not asserted)."""
    layout, competition, working, seconds = run_real_inference(tmp_path)
    assert_valid_submission(layout, competition, working)
    assert f"onnxruntime {ONNXRUNTIME_VERSION}" in install_cell_output(layout)
    timing = json.loads((working / "timing.json").read_text())  # the prediction loop alone
    assert timing["windows"] == len(pd.read_csv(layout.solution)) and timing["seconds"] < seconds
    loop = timing["seconds"]
    expected = (seconds - loop + loop / timing["windows"] * HIDDEN_TEST_WINDOWS) / 60
    assert projected_minutes(seconds, timing["windows"], working) == pytest.approx(expected)
    assert not (layout.root / "envs" / "infer").exists()  # the overlay died with the kernel


def image_python_or_skip(name: str) -> Path:
    """The cached venv of Kaggle image `name` (built on first use: minutes, ~4 GB from PyPI);
    a skip, saying why, only where that image's Python is not installed here."""
    image = get_image(name)
    try:
        find_python(image.minor)
    except BuildError as err:
        pytest.skip(f"Kaggle image {name!r} needs Python {image.minor}: {err}")
    return image_venv(image) / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
@pytest.mark.parametrize("image", ["current", "next"])
def test_inference_notebook_on_kaggle_image_installs_onnxruntime_offline(tmp_path, image):
    """Kaggle's image (its Python, torch, numpy, pandas; no onnxruntime): the install cell
    installs onnxruntime offline from the wheels dataset, a valid submission is written, and
    nothing reaches the cached image venv."""
    python = image_python_or_skip(image)
    layout, competition, working, _ = run_real_inference(tmp_path, python)
    assert_valid_submission(layout, competition, working)
    assert f"onnxruntime {ONNXRUNTIME_VERSION}" in install_cell_output(layout)
    summary = json.loads((working / "inference_summary.json").read_text())
    assert summary["engine"] == "onnxruntime" and summary["onnxruntime_wheel"].startswith(
        f"onnxruntime-{ONNXRUNTIME_VERSION}-cp3"
    )
    left = subprocess.run([python, "-c", "import onnxruntime"], capture_output=True)
    assert left.returncode != 0, "the notebook's install reached the cached image venv"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
@pytest.mark.slow
@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
@pytest.mark.parametrize("wheels", ["none", "wrong-abi"])
def test_inference_notebook_without_a_usable_wheel_falls_back_to_torch(tmp_path, wheels):
    """Kaggle's current image with no onnxruntime wheel, or only other Pythons' wheels: the
    submission is still complete and model-based (PyTorch runs every fold), and says why."""
    python = image_python_or_skip("current")
    layout, competition, working, _ = run_real_inference(tmp_path, python, wheels=wheels)
    assert_valid_submission(layout, competition, working)
    summary = json.loads((working / "inference_summary.json").read_text())
    assert summary["engine"] == "torch" and summary["engine_reason"]
    if wheels == "wrong-abi":
        assert "wrong ABI" in summary["engine_reason"] and "need cp312" in summary["engine_reason"]
    assert set(summary["folds_per_file"]) == {"2"}  # both folds on every file: no fallback rows
    assert "engine: torch (fallback: " in install_cell_output(layout)


def test_rehearsal_needs_both_kernels(tmp_path):
    with pytest.raises(BuildError, match="rehearsal needs kernels/"):
        rehearse({"train": tmp_path}, options(tmp_path))


def test_rehearsal_refuses_to_wipe_a_foreign_folder(tmp_path):
    write(tmp_path / "precious" / "notes.txt", "keep me")
    with pytest.raises(BuildError, match="refusing to delete"):
        prepare_workdir(tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"
    layout = prepare_workdir(tmp_path / "fresh")
    write(layout.root / "old.txt", "from a previous rehearsal")
    prepare_workdir(tmp_path / "fresh")  # its own folder: emptied and laid out again
    assert not (tmp_path / "fresh" / "old.txt").exists()


def test_projected_minutes(tmp_path):
    assert projected_minutes(60.0, 240, tmp_path) == pytest.approx(100.0)
    write(tmp_path / "timing.json", json.dumps({"windows": 240, "seconds": 24.0}))
    assert projected_minutes(60.0, 240, tmp_path) == pytest.approx((36 + 2400) / 60)


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "kernels" / "train.py").is_file(), reason="no kernels/train.py")
def test_rehearsal_end_to_end_with_the_real_kernels(tmp_path, capsys):
    """CI's small rehearsal: the real training notebook (2 folds, 1 epoch) feeds the real
    inference notebook through the models dataset; the submission is checked and scored.

    Plumbing only: 3 windows cannot show learning (random scores average ~0.98 there). The
    learning threshold is the full rehearsal's (test_full_rehearsal_reaches_min_score)."""
    spec = {**SMALL_SPEC, "recordings_per_species": [4, 5], "soundscape_seconds": 15.0}
    config = {"epochs": 1, "n_folds": 2, "minor_class_threshold": 1, "n_mels": 32}
    result = rehearse(
        build_into(tmp_path, owner="me"),
        options(tmp_path, spec_overrides=spec, config_overrides=config),
    )
    work = tmp_path / "w"
    models = {p.name for p in (work / "input" / MODELS_DATASET_SLUG).iterdir()}
    assert {"fold0.onnx", "fold1.onnx", "classes.json", "config.json"} <= models
    submission = pd.read_csv(work / "working" / "infer" / "submission.csv")
    solution = pd.read_csv(work / "solution.csv")
    assert result.score == pytest.approx(padded_cmap(solution, submission))
    assert result.windows == len(solution) == 3
    assert (work / "working" / "train" / "runs" / "finetune" / "summary.json").is_file()
    assert "padded cmAP" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("BIRDCLEF_FULL_REHEARSAL"),
    reason="the README's full rehearsal (5-8 min on 2 cores): set BIRDCLEF_FULL_REHEARSAL=1",
)
def test_full_rehearsal_reaches_min_score(tmp_path, capsys):
    """`build_kernels.py --rehearse` as the README runs it: the trained folds must reach the
    default --min-score (0.90) on 48 windows where random scores average ~0.61."""
    argv = ["--out", str(tmp_path / "build"), "--workdir", str(tmp_path / "w"), "--rehearse"]
    assert bk.main(argv) == 0, capsys.readouterr().err
    assert "rehearsal passed: padded cmAP" in capsys.readouterr().out


def test_hard_setting_is_rehearsable_in_every_year():
    for slug in ("birdclef-2023", "birdclef-2024", "birdclef-2025", "birdclef-2026"):
        assert check_rehearsable(slug, hard=True) == profile(slug)


def test_each_year_has_its_bar_and_hidden_test():
    assert default_min_score("birdclef-2023") == 0.90 and default_min_score("birdclef-2026") < 0.9
    assert default_min_score("birdclef-2023", hard=True) == 0.40
    assert 0.5 < default_min_score("birdclef-2025", hard=True) < default_min_score("birdclef-2025")
    assert hidden_test_windows(profile("birdclef-2023")) == HIDDEN_TEST_WINDOWS
    assert hidden_test_windows(profile("birdclef-2024")) == 1100 * 48
    assert hidden_test_windows(profile("birdclef-2025")) == 700 * 12


@pytest.mark.slow
@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
def test_reduced_rehearsal_of_2026_scores_roc_auc_and_keeps_numeric_labels(tmp_path, capsys):
    """`--rehearse --competition birdclef-2026`, reduced (1 epoch, 2 folds): the 2026 layout
    (train.csv, taxonomy order, labelled soundscape segments, 1-minute test files named like
    BC2026_Test_...) runs through both real notebooks; the score is ROC-AUC recomputed from
    the submission, and the numeric iNat ids and the sonotype are columns of its header."""
    argv = ["--competition", "birdclef-2026", "--out", str(tmp_path / "b"), "--owner", "me",
            "--wheel-cache", str(WHEEL_CACHE), "--rehearse", "--workdir", str(tmp_path / "w"),
            "--min-score", "0",
            "--rehearse-spec", json.dumps({"n_soundscapes": 2, "recordings_per_species": [4, 5]}),
            "--rehearse-config", json.dumps({"epochs": 1, "n_folds": 2, "minor_class_threshold": 1,
                                             "n_mels": 32})]  # fmt: skip
    assert bk.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    work = tmp_path / "w"
    submission_path = work / "working" / "infer" / "submission.csv"
    header = submission_path.read_text().splitlines()[0].split(",")
    assert {"41778", "1139490", "47158son16"} <= set(header)  # as in train.csv, not 41778.0
    submission = pd.read_csv(submission_path)
    solution = pd.read_csv(work / "solution.csv")
    assert len(submission) == 2 * 12 and submission.row_id.str.startswith("BC2026_Test_").all()
    expected = roc_auc(solution, submission)
    assert f"rehearsal passed: ROC-AUC {expected:.4f}" in out
    assert (work / "input" / "birdclef-2026-sed-models" / "classes.json").is_file()
    summary = json.loads((work / "working/train/runs/finetune/summary.json").read_text())
    assert summary["metric"] == "roc_auc"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_INFER, reason="no kernels/infer.py")
def test_reduced_hard_rehearsal_of_2025_scores_roc_auc_in_the_years_layout(tmp_path, capsys):
    """`--rehearse --hard --competition birdclef-2025`, reduced (small HardSpec, 1 epoch, 2
    folds): the hard soundscapes cut into 1-minute files, the pre-training sources beside the
    2025 layout; the score is ROC-AUC recomputed from the submission."""
    spec = {
        "n_species": 10,
        "rare_species": 1,
        "lookalike_pairs": 1,
        "absent_species": 1,
        "pretrain_shared": 2,
        "pretrain_extra_species": 1,
        "unlisted_species": 1,
        "recordings_per_species": [6, 6],
        "pretrain_recordings": [1, 1],
        "n_soundscapes": 1,
        "soundscape_seconds": 120.0,
        "n_noise_soundscapes": 1,
        "noise_soundscape_seconds": 10.0,
        "recording_seconds": [5.0, 5.0],
    }
    config = {"epochs": 1, "n_folds": 2, "minor_class_threshold": 1, "n_mels": 32}
    argv = ["--competition", "birdclef-2025", "--out", str(tmp_path / "b"), "--owner", "me",
            "--wheel-cache", str(WHEEL_CACHE), "--rehearse", "--hard", "--min-score", "0",
            "--workdir", str(tmp_path / "w"), "--rehearse-spec", json.dumps(spec),
            "--rehearse-config", json.dumps(config)]  # fmt: skip
    assert bk.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    work = tmp_path / "w"
    assert (work / "input" / "birdclef-2025" / "train.csv").is_file()
    assert not (work / "input" / "birdclef-2023").exists()
    submission_path = work / "working" / "infer" / "submission.csv"
    header = submission_path.read_text().splitlines()[0].split(",")
    assert {"41778", "1139490", "47158son16"} <= set(header)
    submission = pd.read_csv(submission_path)
    solution = pd.read_csv(work / "solution.csv")
    assert len(submission) == 2 * 12 and submission.row_id.str.startswith("soundscape_").all()
    expected = roc_auc(solution, submission)
    assert f"rehearsal passed: ROC-AUC {expected:.4f}" in out
