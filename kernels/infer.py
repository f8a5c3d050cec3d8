# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # BirdCLEF 2023: offline inference (SED, fold models as optimised ONNX, CPU workers)
#
# Reads the test soundscapes, predicts every 5-second window with every fold model (onnxruntime,
# one log-mel per window shared by the folds, a pool of forked workers) and writes
# `submission.csv`. A deadline guard keeps the run inside the time budget (fewer folds, then
# fallback rows) and bad audio never stops it: a complete, valid submission is always written.
# Settings: `Config` defaults, overridden by the JSON in `$BIRDCLEF_CONFIG` (local rehearsal).

# %% config
import json
import logging

from lib.config import Config
from lib.guard import budget_started_at
from lib.infer_workers import available_cores
from lib.paths import (
    MODELS_DATASET_SLUG,
    WHEELS_DATASET_SLUG,
    find_competition,
    find_dataset,
    working_root,
)

STARTED_AT = budget_started_at()  # from the kernel's start, as Kaggle counts
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
CONFIG = Config.from_env()
COMPETITION = find_competition()
SOUNDSCAPES = COMPETITION / "test_soundscapes"
MODELS_DIR = find_dataset(MODELS_DATASET_SLUG, required_file="classes.json")
WORKING = working_root()
WORKING.mkdir(parents=True, exist_ok=True)
SUBMISSION = WORKING / "submission.csv"
print(f"soundscapes: {SOUNDSCAPES} ({len(list(SOUNDSCAPES.glob('*.ogg')))} files)")
print(f"models: {MODELS_DIR} ({sorted(p.name for p in MODELS_DIR.glob('fold*'))})")
print(
    f"cores {available_cores()}: {CONFIG.infer_processes} process(es) x {CONFIG.infer_threads} "
    f"thread(s), batch {CONFIG.infer_batch_size}, budget {CONFIG.time_budget_minutes} min"
)

# %% install onnxruntime (not in Kaggle's image; no internet when scored), else PyTorch
from lib.infer import choose_engine, engine_line, load_bundle
from lib.onnxruntime_setup import install_onnxruntime

try:
    WHEELS_DIR = find_dataset(WHEELS_DATASET_SLUG, required_file="onnxruntime-*.whl")
except FileNotFoundError as err:
    WHEELS_DIR = None  # fine where onnxruntime is already installed; else PyTorch runs the folds
    print(f"no wheels dataset: {err}")
ONNXRUNTIME = install_onnxruntime(WHEELS_DIR)  # never raises: .reason says why it is unusable
ENGINE = choose_engine(
    load_bundle(MODELS_DIR), "onnxruntime" if ONNXRUNTIME.usable else "torch", ONNXRUNTIME.reason
)  # onnxruntime only if a probe subprocess also runs every fold model
print(engine_line(ENGINE, ONNXRUNTIME.version, ONNXRUNTIME.wheel))

# %% inference
from lib.infer import run_inference

SUMMARY = run_inference(
    MODELS_DIR,
    SOUNDSCAPES,
    SUBMISSION,
    CONFIG,
    started_at=STARTED_AT,
    engine=ENGINE,
    onnxruntime_wheel=ONNXRUNTIME.wheel,
)

# %% summary
print(
    f"files {SUMMARY.files}, rows {SUMMARY.rows}, {SUMMARY.seconds:.1f} s, "
    f"{SUMMARY.processes} process(es) x {SUMMARY.threads} thread(s) "
    f"({SUMMARY.start_method}), batch {SUMMARY.batch_size}"
)
print(f"python {SUMMARY.python}, {engine_line(ENGINE, ONNXRUNTIME.version, ONNXRUNTIME.wheel)}")
print("files per fold count (0 = fallback rows):", SUMMARY.folds_per_file)
print("deadline guard:", SUMMARY.guard or "all files used every fold model")
print(f"fallback files: {len(SUMMARY.fallback_files)}, warnings: {len(SUMMARY.warnings)}")
for note in SUMMARY.warnings[:20]:
    print("  ", note)
timing = {"windows": SUMMARY.windows, "seconds": SUMMARY.seconds}
(WORKING / "timing.json").write_text(json.dumps(timing) + "\n")  # read by the rehearsal
(WORKING / "inference_summary.json").write_text(SUMMARY.to_json())
