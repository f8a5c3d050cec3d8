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
# # BirdCLEF: offline inference (SED fold models as optimised ONNX, CPU workers)
#
# Predicts every 5-second window of the test soundscapes with every fold model and writes
# `submission.csv`. `COMPETITION` picks the year: its test folder, file length and CPU limit
# come from its profile. A deadline guard keeps the run inside the time budget (fewer folds, then
# fallback rows) and bad audio never stops it: a complete, valid submission is always written.
#
# ## Settings
# `$BIRDCLEF_CONFIG` (a JSON object) overrides any of them (the local rehearsal does).

# %%
SETTINGS = dict(
    infer_processes=4,  # worker processes (Kaggle: 4 cores); fitted to the cores found
    infer_threads=1,  # model threads per worker (processes x threads <= cores)
    infer_batch_size=1,  # windows per model call (1 ran fastest, least memory)
)
COMPETITION = "birdclef-2023"  # the year (lib/competitions.py); build_kernels.py --competition

# %%
import json
import logging

from IPython.display import display

from lib.competitions import profile, profile_settings
from lib.config import Config
from lib.guard import budget_started_at
from lib.infer_workers import available_cores
from lib.paths import (
    find_competition,
    find_dataset,
    models_dataset_slug,
    wheels_dataset_slug,
    working_root,
)

STARTED_AT = budget_started_at()  # from the kernel's start, as Kaggle counts
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
PROFILE = profile(COMPETITION)  # time budget (CPU limit - 10 min), test file length
CONFIG = Config.from_env({**profile_settings(PROFILE), **SETTINGS})  # then $BIRDCLEF_CONFIG
SOUNDSCAPES = find_competition(slug=COMPETITION) / PROFILE.test_dir
MODELS_DIR = find_dataset(models_dataset_slug(COMPETITION), required_file="classes.json")
WORKING = working_root()
WORKING.mkdir(parents=True, exist_ok=True)
print(f"soundscapes: {SOUNDSCAPES} ({len(list(SOUNDSCAPES.glob('*.ogg')))} files)")
print(f"models: {MODELS_DIR} ({sorted(p.name for p in MODELS_DIR.glob('fold*'))})")
print(
    f"{PROFILE.title}: budget {CONFIG.time_budget_minutes:.0f} of {PROFILE.cpu_limit_minutes} min"
)
print(f"cores: {available_cores()}; settings: {json.dumps(SETTINGS)}")

# %% [markdown]
# ## Install onnxruntime
# Kaggle's image has no onnxruntime and the scoring run no internet: the wheel for this Python
# comes from the attached wheels dataset (`build_kernels.py --wheels`: cp311-cp314). When it
# cannot be installed, or cannot run the fold models, PyTorch runs them instead (slower: the
# deadline guard then fits fewer folds if it must), and the line below says why.

# %%
from lib.infer import choose_engine, engine_line, load_bundle
from lib.onnxruntime_setup import install_onnxruntime

try:
    WHEELS_DIR = find_dataset(wheels_dataset_slug(COMPETITION), required_file="onnxruntime-*.whl")
except FileNotFoundError as err:
    WHEELS_DIR = None  # fine where onnxruntime is already installed; else PyTorch runs the folds
    print(f"no wheels dataset: {err}")
ONNXRUNTIME = install_onnxruntime(WHEELS_DIR)  # never raises: .reason says why it is unusable
ENGINE = choose_engine(
    load_bundle(MODELS_DIR), "onnxruntime" if ONNXRUNTIME.usable else "torch", ONNXRUNTIME.reason
)  # onnxruntime only if a probe subprocess also runs every fold model
print(engine_line(ENGINE, ONNXRUNTIME.version, ONNXRUNTIME.wheel))

# %% [markdown]
# ## Inference
# Decode → 5-s windows → one log-mel per window shared by the folds → every fold model, in a
# pool of forked workers; the submission is written file by file, atomically.

# %%
from lib.infer import run_inference

SUBMISSION = WORKING / "submission.csv"
SUMMARY = run_inference(
    MODELS_DIR, SOUNDSCAPES, SUBMISSION, CONFIG, started_at=STARTED_AT,
    engine=ENGINE, onnxruntime_wheel=ONNXRUNTIME.wheel,
)  # fmt: skip

# %% [markdown]
# ## Summary
# The run at a glance and its warnings; saved as `inference_summary.json`.

# %%
timing = {"windows": SUMMARY.windows, "seconds": SUMMARY.seconds}
(WORKING / "timing.json").write_text(json.dumps(timing) + "\n")  # read by the rehearsal
(WORKING / "inference_summary.json").write_text(SUMMARY.to_json())
display(SUMMARY.table())
for note in SUMMARY.warnings[:20]:
    print("  ", note)
