"""The rehearsal: the whole Kaggle loop run locally on a synthetic competition.

Synthetic competition (in the chosen year's layout) -> training notebook -> models dataset ->
offline inference notebook -> submission check -> the year's metric (padded cmAP in 2023,
ROC-AUC from 2024) against the synthetic truth, with the projected time of the hidden test
against the year's CPU limit. Each notebook runs in its own working folder and sees only
`input/`, as on Kaggle, and in its own throwaway environment (workbench/kaggle_image.py): an
overlay on Kaggle's image (`--kaggle-image`) or on the builder's venv, without onnxruntime, so
what the training notebook installs is gone before the inference notebook starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from lib.competitions import DEFAULT_COMPETITION, CompetitionProfile, profile
from lib.paths import models_dataset_slug, wheels_dataset_slug
from workbench.errors import BuildError
from workbench.execute import (
    cell_seconds,
    execute_notebook,
    kernel_env,
    offline_prefix,
    thread_settings,
)
from workbench.kaggle_image import (
    builder_python,
    get_image,
    image_venv,
    overlay_venv,
    python_minor,
)
from workbench.metadata import copy_models
from workbench.submission import (
    check_submission,
    expected_columns,
    label_problems,
    rows_per_file_problems,
)
from workbench.wheels import copy_wheels, fetch_wheels

REPO = Path(__file__).resolve().parents[1]  # stripped from the notebooks' PYTHONPATH

# Small enough for ~15 minutes on 2 CPU cores; the training notebook reads it via Config.from_env.
# A tiny CNN from scratch needs a few hundred optimiser steps to learn the synthetic calls
# (measured: 15 epochs -> padded cmAP 0.66 on the soundscapes, 100 epochs -> 0.92, one fold).
REHEARSAL_TRAIN_CONFIG = {
    "backbone": "mobilenetv3_small_050",
    "pretrained": False,
    "n_mels": 64,
    "n_folds": 5,
    "epochs": 100,
    "batch_size": 8,
    "lr": 3e-3,
    "dropout": 0.1,
    "freq_mask_max": 6,  # SpecAugment masks scaled to 64 mels
    "time_mask_max": 20,
    "background_noise_p": 0.0,  # the synthetic competition ships no noise recordings
    "num_workers": 0,
    # Measured on the soundscapes, same 5 folds: frame_max 0.923, mean 0.899, clip 0.870.
    "window_output": "frame_max",
    "plan_loader_seconds": 1.0,  # the training plan's measurements, kept short
    "plan_warmup_steps": 4,
}
# Four 60 s soundscapes (48 scored windows); no pre-training sources, so the training notebook
# goes straight to the 5-fold fine-tune (pre-training is covered by tests/test_train.py).
REHEARSAL_SPEC = {"n_soundscapes": 4, "with_pretrain_sources": False}
REHEARSAL_INFER_CONFIG = {"infer_processes": 2, "infer_threads": 1}
REHEARSAL_MIN_SCORE = 0.90
# --hard: the hard setting (workbench/synthetic/hard.py, BirdCLEF's domain shift) with its
# pre-training sources and field background; the same small model, background noise on.
REHEARSAL_HARD_TRAIN_CONFIG = {**REHEARSAL_TRAIN_CONFIG, "background_noise_p": 0.3, "epochs": 12}
# Measured (2 cores, 24 x 120 s = 576 windows): this rehearsal 0.524 (seed 42, deterministic on
# the CPU); untrained models 0.317-0.322 (3 random initialisations) on the same test. The same
# small model scored 0.39-0.63 across training seeds and tests (benchmarks/RESULTS.md), so the
# bar sits between: it catches a pipeline that learns nothing, not a 0.05 regression.
REHEARSAL_HARD_MIN_SCORE = 0.40
# ROC-AUC years (2024-2026, workbench/synthetic/years.py layout, the same small model).
# Measured (2 cores, --rehearse-config '{"folds": [0], "epochs": 60}'): 2024 0.849 (192
# windows), 2025 0.821, 2026 0.840 (48 windows each); untrained (1 epoch at lr 1e-12) 2026
# 0.528, chance 0.5. The bar sits between: it catches a pipeline that learns nothing.
REHEARSAL_ROC_AUC_MIN_SCORE = 0.70
REHEARSAL_MIN_SCORES = {"padded_cmap": REHEARSAL_MIN_SCORE, "roc_auc": REHEARSAL_ROC_AUC_MIN_SCORE}
# --hard --competition <2024-2026>: the hard setting in the year's layout, scored by ROC-AUC.
# Measured (2 cores, default HardSpec, 2026, 576 windows): this rehearsal 0.668 (5.8 min in
# all); random scores on the same solution 0.489-0.513 (5 seeds). An untrained-model run is
# not measured yet. The bar sits between: it catches a pipeline that learns nothing.
REHEARSAL_HARD_ROC_AUC_MIN_SCORE = 0.60
REHEARSAL_HARD_MIN_SCORES = {
    "padded_cmap": REHEARSAL_HARD_MIN_SCORE,
    "roc_auc": REHEARSAL_HARD_ROC_AUC_MIN_SCORE,
}
# Hidden test files of each year's scoring run (shared/birdclef-years.md; approximate):
# the projected time is for this many files of the profile's length.
HIDDEN_TEST_FILES = {
    "birdclef-2023": 200,
    "birdclef-2024": 1100,
    "birdclef-2025": 700,
    "birdclef-2026": 600,
}
HIDDEN_TEST_WINDOWS = 24_000  # 2023: ~200 soundscapes x 120 windows in the scoring run
KAGGLE_LIMIT_MINUTES = 120  # 2023's; each year's is its profile's cpu_limit_minutes
_REHEARSAL_MARK = ".birdclef-rehearsal"


@dataclass(frozen=True)
class RehearsalLayout:
    """Where a rehearsal keeps things: input/ (what the notebooks see), executed/ (the executed
    notebooks), working/<kernel>/ (each notebook's output) and the hidden solution.csv."""

    root: Path
    input: Path
    executed: Path
    solution: Path

    @classmethod
    def at(cls, workdir: Path) -> RehearsalLayout:
        return cls(workdir, workdir / "input", workdir / "executed", workdir / "solution.csv")

    def working_dir(self, kernel: str) -> Path:
        """Each notebook gets its own working folder, as on Kaggle (nothing leaks between)."""
        path = self.root / "working" / kernel
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class RehearsalOptions:
    """What a rehearsal may change: JSON-like overrides of the training config and of the
    synthetic competition's spec, where the wheels are cached, how long one cell may run."""

    workdir: Path
    wheel_cache: Path
    config_overrides: dict = field(default_factory=dict)
    spec_overrides: dict = field(default_factory=dict)
    cell_timeout: int = 3600
    hard: bool = False  # the hard setting (HardSpec fields in spec_overrides)
    competition: str = DEFAULT_COMPETITION  # the year whose layout, metric and limits apply
    kaggle_image: str | None = None  # a kaggle_images.toml entry; None: the builder's venv


@dataclass(frozen=True)
class RehearsalResult:
    score: float  # the year's metric of the submission on the synthetic truth
    windows: int  # rows of the submission
    train_s: float
    infer_s: float
    projected_min: float  # minutes the inference notebook would take on the hidden test


def prepare_workdir(workdir: Path) -> RehearsalLayout:
    """Empty `workdir` (only if it is a previous rehearsal's, or empty) and lay it out."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / _REHEARSAL_MARK).exists():
            raise BuildError(
                f"--workdir {workdir} is not empty and was not made by a rehearsal; refusing to "
                f"delete it. Fix: pass an empty or new folder."
            )
        shutil.rmtree(workdir)
    layout = RehearsalLayout.at(workdir)
    for folder in (layout.input, layout.executed):
        folder.mkdir(parents=True, exist_ok=True)
    (workdir / _REHEARSAL_MARK).write_text("made by build_kernels.py --rehearse\n")
    return layout


def synthetic_spec(overrides: dict, hard: bool = False):
    """The SyntheticSpec (HardSpec if `hard`) of the JSON overrides (lists become tuples); a
    bad field is a BuildError naming --rehearse-spec."""
    from workbench.synthetic import SyntheticSpec
    from workbench.synthetic.hard import HardSpec

    spec_type = HardSpec if hard else SyntheticSpec
    tuples = {f.name for f in dataclasses.fields(spec_type) if isinstance(f.default, tuple)}
    values = {k: tuple(v) if k in tuples else v for k, v in overrides.items()}  # JSON lists
    try:
        return spec_type(**values)
    except (TypeError, ValueError) as err:
        where = "hard.py" if hard else "spec.py"
        raise BuildError(
            f"--rehearse-spec: {err}. Fix: use {spec_type.__name__}'s fields "
            f"(workbench/synthetic/{where}) with valid values."
        ) from err


def default_min_score(competition: str = DEFAULT_COMPETITION, hard: bool = False) -> float:
    """--min-score's default: the hard setting's bar, else the bar of the year's metric."""
    scores = REHEARSAL_HARD_MIN_SCORES if hard else REHEARSAL_MIN_SCORES
    return scores[profile(competition).metric]


def hidden_test_windows(year: CompetitionProfile) -> int:
    """Windows of the year's scoring run: its hidden test files x rows per file."""
    return HIDDEN_TEST_FILES[year.slug] * year.rows_per_test_file


def check_rehearsable(competition: str, hard: bool) -> CompetitionProfile:
    """The year's profile; the hard setting is written in every year's layout
    (years.make_hard_year_competition), so `hard` refuses nothing any more."""
    return profile(competition)


def make_synthetic(
    layout: RehearsalLayout, spec_overrides: dict, hard: bool = False,
    competition: str = DEFAULT_COMPETITION,
) -> Path:  # fmt: skip
    """The synthetic competition under input/ (2023: make_competition; other years:
    make_year_competition in their layout; hard: make_hard_year_competition in the year's
    layout), its truth moved out of the notebooks' sight."""
    from workbench.synthetic import make_competition
    from workbench.synthetic.years import make_hard_year_competition, make_year_competition

    spec = synthetic_spec(spec_overrides, hard)
    year = profile(competition)
    if hard:
        comp = make_hard_year_competition(
            layout.input, year, spec, truth_dir=layout.root / "hard_truth"
        )
    elif competition != DEFAULT_COMPETITION:
        comp = make_year_competition(layout.input, year, spec)
    else:
        comp = make_competition(layout.input, spec)
    shutil.move(str(layout.input / "solution.csv"), layout.solution)
    return comp


def kernel_environment(name: str, layout: RehearsalLayout, base_python: Path) -> tuple:
    """(python, env extras) of a fresh overlay venv for kernel `name` on `base_python`."""
    envs = layout.root / "envs" / name
    shutil.rmtree(envs, ignore_errors=True)
    python = overlay_venv(base_python, envs)
    venv = python.parents[1]
    threads, _ = thread_settings(os.environ)
    extra = {
        "PATH": os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]),
        "VIRTUAL_ENV": str(venv),
        "PYTHONNOUSERSITE": "1",  # ~/.local must not lend the kernel onnxruntime
        **threads,
    }
    return python, extra


def run_kernel(
    name: str,
    folder: Path,
    layout: RehearsalLayout,
    config: dict,
    *,
    offline: bool,
    cell_timeout: int = 3600,
    base_python: Path | None = None,
) -> tuple[Path, float]:
    """Execute build/<name>/<name>.ipynb like Kaggle would, in its own overlay environment on
    `base_python` (default: the builder's); save the executed copy. The overlay is deleted after.

    Returns (the notebook's working folder, seconds it ran).
    """
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    working = layout.working_dir(name)
    python, extra = kernel_environment(name, layout, Path(base_python or builder_python()))
    extra.update(
        KAGGLE_INPUT_DIR=str(layout.input),
        KAGGLE_WORKING_DIR=str(working),
        BIRDCLEF_CONFIG=json.dumps(config),
    )
    env = {k: v for k, v in kernel_env(os.environ, REPO, extra).items() if k != "PYTHONHOME"}
    executed_path = layout.executed / f"{name}.ipynb"
    how = "online"
    if offline:
        how = "offline: unshare --net" if offline_prefix() else "offline: socket-blocker fallback"
    print(f"rehearsal: running {name} ({how}) in {working}")
    try:
        nb, seconds = execute_notebook(
            nb, working, env, offline=offline, timeout=cell_timeout, python=python
        )
    except CellExecutionError as err:
        nbformat.write(nb, executed_path)
        summary = str(err).strip().splitlines()[-1:] or ["(no message)"]
        raise BuildError(
            f"rehearsal: notebook {name} failed: {summary[0]}\nExecuted copy with the "
            f"traceback: {executed_path}"
        ) from err
    finally:
        shutil.rmtree(python.parents[2], ignore_errors=True)  # what the notebook installed
    nbformat.write(nb, executed_path)
    print(f"rehearsal: {name} took {seconds:.1f} s; slowest cells:")
    for cell_s, index, first_line in cell_seconds(nb)[:3]:
        print(f"    {cell_s:8.1f} s  cell {index}: {first_line}")
    return working, seconds


def projected_minutes(
    infer_seconds: float, windows: int, working: Path, hidden_windows: int = HIDDEN_TEST_WINDOWS
) -> float:
    """Minutes the inference notebook would take on the hidden test (`hidden_windows`, the
    year's: hidden_test_windows), from this run.

    If the notebook writes working/timing.json ({"windows": n, "seconds": s}, the prediction
    loop alone), fixed costs are kept apart: total - s + s / n * hidden_windows. Otherwise
    all time is treated as per-window (an over-estimate on a tiny test set).
    """
    timing = working / "timing.json"
    if timing.is_file():
        data = json.loads(timing.read_text())
        loop = float(data["seconds"])
        return (infer_seconds - loop + loop / int(data["windows"]) * hidden_windows) / 60
    return infer_seconds / max(windows, 1) * hidden_windows / 60


def rehearse_inputs(
    layout: RehearsalLayout, train_working: Path, wheel_cache: Path, python: Path | None = None,
    competition: str = DEFAULT_COMPETITION,
) -> None:  # fmt: skip
    """Mount the competition's models and wheels datasets under input/ like Kaggle attaches
    them; the wheels are those for the inference kernel's Python (`python`, default the
    builder's)."""
    copy_models(train_working, layout.input / models_dataset_slug(competition))
    wheels = fetch_wheels(wheel_cache)  # the build's wheels dataset: every Python's ABI
    copy_wheels(wheels, layout.input / wheels_dataset_slug(competition))


def base_environment(kaggle_image: str | None) -> Path:
    """The Python every notebook's overlay is made on: Kaggle's image venv, or the builder's."""
    if kaggle_image is None:
        print(f"rehearsal: environment: the builder's venv ({sys.executable}), onnxruntime hidden")
        return builder_python()
    image = get_image(kaggle_image)
    python = image_venv(image) / "bin" / "python"
    print(
        f"rehearsal: environment: Kaggle image {image.name!r} (Python {image.python}, "
        f"{image.date}; local {python_minor(python)}) from kaggle_images.toml"
    )
    return python


def submission_problems(
    competition_dir: Path, year: CompetitionProfile, submission_path: Path, solution,
    year_layout: bool = True,
) -> list[str]:  # fmt: skip
    """What is wrong with the rehearsal's submission.csv: check_submission against the
    sample submission's columns; then, for a competition in the year's layout
    (`year_layout`: make_year_competition; 2023's synthetic soundscapes are shorter than
    the real ones), the year's rows per test file and every training label, read as a string
    by lib.competitions, in the header."""
    import pandas as pd

    from lib.competitions import read_train_table

    columns = expected_columns(competition_dir, solution)
    problems = check_submission(submission_path, columns, solution)
    if problems or not year_layout:
        return problems
    submission = pd.read_csv(submission_path, dtype={"row_id": str})
    labels = read_train_table(year, competition_dir)[year.label_column].tolist()
    header = pd.read_csv(submission_path, nrows=0, dtype=str).columns.tolist()
    problems = rows_per_file_problems(submission, year.rows_per_test_file)
    return problems + label_problems(labels, header)


def rehearse(folders: dict[str, Path], options: RehearsalOptions) -> RehearsalResult:
    """Run train then offline inference on a synthetic competition of the year's layout;
    check the submission, score it with the year's metric, project the hidden test's time."""
    import pandas as pd

    from lib.config import Config
    from lib.metric import score as metric_score
    from lib.run_dir import metric_label

    missing = [name for name in ("train", "infer") if name not in folders]
    if missing:
        raise BuildError(f"rehearsal needs kernels/{missing[0]}.py (missing: {missing})")
    year = check_rehearsable(options.competition, options.hard)
    base, spec = REHEARSAL_TRAIN_CONFIG, REHEARSAL_SPEC
    if options.hard:
        base, spec = REHEARSAL_HARD_TRAIN_CONFIG, {}
    train_config = {**base, **options.config_overrides}
    try:  # unknown fields fail here, not 10 minutes in
        backbone = Config.from_dict(train_config).backbone
    except (KeyError, TypeError, ValueError) as err:
        raise BuildError(f"--rehearse-config: {err}. Fix: use lib/config.py's fields.") from err
    spec_overrides = {**spec, **options.spec_overrides}
    synthetic_spec(spec_overrides, options.hard)
    base_python = base_environment(options.kaggle_image)
    print(f"rehearsal: {year.title}; {thread_settings(os.environ)[1]}")
    layout = prepare_workdir(Path(options.workdir))
    start = time.perf_counter()
    competition = make_synthetic(layout, spec_overrides, options.hard, year.slug)
    print(f"rehearsal: synthetic competition in {time.perf_counter() - start:.1f} s")
    timeout = options.cell_timeout
    train_working, train_s = run_kernel(
        "train", folders["train"], layout, train_config, offline=False, cell_timeout=timeout,
        base_python=base_python,
    )  # fmt: skip
    rehearse_inputs(layout, train_working, Path(options.wheel_cache), base_python, year.slug)
    infer_working, infer_s = run_kernel(
        "infer", folders["infer"], layout, REHEARSAL_INFER_CONFIG, offline=True,
        cell_timeout=timeout, base_python=base_python,
    )  # fmt: skip
    solution = pd.read_csv(layout.solution, dtype={"row_id": str})
    submission_path = infer_working / "submission.csv"
    problems = submission_problems(
        competition, year, submission_path, solution, year_layout=year.slug != DEFAULT_COMPETITION
    )
    if problems:
        raise BuildError(f"rehearsal: {submission_path}: " + "; ".join(problems))
    submission = pd.read_csv(submission_path, dtype={"row_id": str})
    score = metric_score(year.metric, solution, submission)
    hidden = hidden_test_windows(year)
    minutes = projected_minutes(infer_s, len(submission), infer_working, hidden)
    print(
        f"rehearsal: {metric_label(year.metric)} {score:.4f} on {len(submission)} windows | "
        f"train {train_s:.0f} s | infer {infer_s:.0f} s | projected hidden test ({hidden} "
        f"windows) {minutes:.1f} min here with this rehearsal's {backbone}"
        f" folds ({os.cpu_count()} cores; Kaggle: 4 cores, {year.cpu_limit_minutes} min limit; "
        "the recipe's efficientnet_b0: see benchmarks/RESULTS.md)"
    )
    return RehearsalResult(score, len(submission), train_s, infer_s, minutes)
