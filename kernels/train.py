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
# # BirdCLEF 2023: SED training (pre-train -> fine-tune, 5 folds, ONNX export)
#
# The 24th-place recipe: an `efficientnet_b0` SED model on 256-mel log-mel images of 5-second
# clips, pre-trained on the older BirdCLEF / Xeno-canto data when those are attached, then
# fine-tuned on the 2023 species fold by fold, and exported to ONNX for the inference notebook.
#
# - **Settings**: the next cell; any `Config` field can be overridden without editing by the
#   JSON object in `$BIRDCLEF_CONFIG` (the local rehearsal shrinks the run that way).
# - **Inputs**: the competition (required); the pre-training sources `birdsong-recognition`,
#   `birdclef-2021`, `birdclef-2022` and the Xeno-canto extended A-M / N-Z datasets (optional:
#   without them the folds are fine-tuned from ImageNet weights).
# - **Outputs** (`/kaggle/working`): `runs/pretrain/` and `runs/finetune/` (config, folds,
#   per-fold `best.pt` / `last.pt` / `history.csv` / `oof.csv`, `history.png`, `summary.json`)
#   and the exported models `fold<k>.onnx`, `classes.json`, `config.json`, `export.json`: the
#   content of the models dataset the inference notebook reads.
# - **Resume**: a Kaggle session ends after 12 hours. Training stops cleanly at an epoch boundary
#   before `TIME_BUDGET_HOURS`; attach this notebook's output as an input (Add Input > Notebook
#   Output) and run it again: `runs/` is copied back, finished folds are skipped and the fold in
#   progress continues from its `last.pt`, losing at most one epoch.
# - **Scale**: each epoch's 5-s crop is decoded straight from the file (durations come from one
#   pass over the headers, kept as `runs/<stage>/durations.csv`). Before training, **the plan**
#   prints the recordings, species and clips per epoch of each stage, the loader's measured
#   clips/s on this machine's cores, the GPU's step rate (a few uncounted steps), the projected
#   hours per epoch and for the whole recipe, and the number of sessions; it warns when the
#   loader, not the GPU, is the bottleneck (then set `cache_budget_gb`). Unreadable or silent
#   recordings are skipped, never fatal, and listed in `runs/<stage>/skipped_files.csv`.
# - **Two GPUs** (Kaggle's 2 x T4): the notebook cannot fork itself safely once CUDA is in use,
#   and spawned workers cannot import code defined in cells. So `run_training` writes the
#   library inlined in this notebook to `runs/<stage>/ddp/train_ddp.py` (IPython keeps each
#   cell's text) and runs `torchrun --nproc_per_node=2` on it: one process per GPU, DDP, each
#   process training on its share of the clips; rank 0 writes every file; validation clips are
#   split over the ranks and gathered. The batch size is per process (2 x T4: twice as many
#   clips per step). Its log streams into this cell. One GPU or the CPU: the same code runs in
#   this process.

# %% imports
import contextlib
import json
import shutil
import time

import pandas as pd
from IPython.display import Image, display

# %% the library (build_kernels.py inlines it here; keep this cell imports only: its text is
# what the torchrun script for two GPUs is made of)
from lib.config import Config
from lib.noise import find_noise_bank
from lib.paths import (
    find_competition,
    find_dataset,
    find_notebook_output,
    input_root,
    working_root,
)
from lib.run_dir import pretraining_table
from lib.sources import class_list, make_folds, read_birdclef2023, read_sources
from lib.throughput import StageData, make_training_plan
from lib.train_folds import run_training

# %% settings: the recipe's values; $BIRDCLEF_CONFIG (a JSON object) overrides any Config field
STARTED = time.time()
CONFIG = Config.from_env(
    {
        "backbone": "efficientnet_b0",
        "pretrained": True,  # ImageNet weights (the train notebook has internet)
        "n_mels": 256,
        "clip_seconds": 5.0,
        "n_folds": 5,
        "folds": [],  # empty: every fold; e.g. [0, 1] to train only those
        "epochs": 50,
        "lr": 1e-3,
        "min_lr": 1e-6,
        "weight_decay": 1e-2,
        "label_smoothing": 0.1,
        "amp": False,  # the recipe trains in fp32; True: float16 autocast on GPUs
        "seed": 42,
        # Training data at scale (see the plan below): crops are decoded from the files; the
        # decoded cache is off (0) unless the plan says the loader is the bottleneck.
        "cache_budget_gb": 0.0,  # e.g. 12: bytes of decoded audio kept (float16: 64 KB/s)
        "cache_min_free_gb": 2.0,  # the cache never leaves less than this free on its disk
        "plan_loader_seconds": 5.0,  # loader sampling per stage for the plan
        "plan_warmup_steps": 20,  # uncounted training steps that time the GPU (0: skip)
    }
)
# Where the decoded cache lives (cache_budget_gb > 0). None: a temporary folder, decoded again
# in every session. A folder under /kaggle/working survives into this notebook's output (so a
# resumed session reuses it) but counts against the output's ~20 GB.
CACHE_DIR = None
PRETRAIN = True  # pre-train first when the older sources are attached
PRETRAIN_VALID_FOLD = 0  # pre-training is validated on this fold of the 2023 data
TIME_BUDGET_HOURS = 11.0  # stop at an epoch boundary after this; rerun to continue
NPROC = None  # training processes; None: one per visible GPU (1 on the CPU)
NOISE_DATASET = None  # slug of an attached dataset of background-noise recordings, if any
RESUME_FROM = "birdclef-2023-sed-train"  # this notebook's earlier output, if attached

INPUT, WORKING = input_root(), working_root()
RUNS = WORKING / "runs"
DEADLINE = STARTED + TIME_BUDGET_HOURS * 3600
WORKING.mkdir(parents=True, exist_ok=True)
print(json.dumps(CONFIG.to_dict(), sort_keys=True))

# %% inputs: the competition, the optional pre-training sources, noise, an earlier run
COMPETITION = find_competition()
SOURCE_SLUGS = {
    "birdsong-recognition": ["birdsong-recognition"],
    "birdclef-2021": ["birdclef-2021"],
    "birdclef-2022": ["birdclef-2022"],
    "xeno-canto-extended": [
        "xeno-canto-extended",
        "xeno-canto-bird-recordings-extended-a-m",
        "xeno-canto-bird-recordings-extended-n-z",
    ],
}
SOURCE_ROOTS = {}
for name, slugs in SOURCE_SLUGS.items():
    found = []
    for slug in slugs:  # competitions: <input>/<slug> or <input>/competitions/<slug>
        with contextlib.suppress(FileNotFoundError):
            found.append(find_competition(slug=slug))
            continue
        with contextlib.suppress(FileNotFoundError):  # datasets: <input>/datasets/<owner>/<slug>
            found.append(find_dataset(slug))
    if found:
        SOURCE_ROOTS[name] = found
print(f"competition: {COMPETITION}")
print(f"pre-training sources: {SOURCE_ROOTS or 'none attached'}")
# Background noise: 2021's nocall soundscape windows plus NOISE_DATASET, decoded on demand.
NOISE_DIRS = [find_dataset(NOISE_DATASET)] if NOISE_DATASET else []
NOISE_BANK = find_noise_bank(SOURCE_ROOTS.get("birdclef-2021", []), NOISE_DIRS, CONFIG.clip_seconds)
print(NOISE_BANK.summary())
# resume: this notebook's earlier output, attached by `python build_kernels.py --resume`
try:
    EARLIER = find_notebook_output(RESUME_FROM, required="runs") / "runs"
except FileNotFoundError:
    EARLIER = None
if EARLIER is None:
    print(f"resume: NOT resuming (no earlier output of '{RESUME_FROM}' attached): a new run")
elif RUNS.exists():
    print(f"resume: NOT copying {EARLIER}: this session already has {RUNS}; continuing that")
else:
    shutil.copytree(EARLIER, RUNS)
    print(f"resume: RESUMING the earlier run copied from {EARLIER}")

# %% data and folds (the same 2023 folds for both stages)
COMP_TABLE = read_birdclef2023(COMPETITION)
COMP_TABLE = make_folds(COMP_TABLE, CONFIG.n_folds, CONFIG.minor_class_threshold, CONFIG.seed)
CLASSES = class_list(COMP_TABLE)  # sorted: sample_submission's column order
print(f"2023: {len(COMP_TABLE)} recordings, {len(CLASSES)} species")
print(COMP_TABLE["fold"].value_counts().sort_index().rename("recordings per fold (-1: rare)"))

# %% the plan: clips per epoch, the loader's and the GPU's measured pace -> hours and sessions
PRE_TABLE = PRE_CLASSES = None
if PRETRAIN and SOURCE_ROOTS:
    PRE_TABLE = pretraining_table(read_sources(SOURCE_ROOTS), COMP_TABLE, PRETRAIN_VALID_FOLD)
    PRE_CLASSES = class_list(PRE_TABLE)
STAGES = []
if PRE_TABLE is not None:
    STAGES.append(
        StageData("pre-train", PRE_TABLE, PRE_CLASSES, (PRETRAIN_VALID_FOLD,), CONFIG.epochs)
    )
FOLDS = tuple(CONFIG.folds) or tuple(sorted(int(k) for k in COMP_TABLE["fold"].unique() if k >= 0))
STAGES.append(StageData("fine-tune", COMP_TABLE, CLASSES, FOLDS, CONFIG.epochs))
PLAN = make_training_plan(
    CONFIG, STAGES, NPROC, noise_bank=NOISE_BANK, session_hours=TIME_BUDGET_HOURS
)
print(PLAN.text())
RUNS.mkdir(parents=True, exist_ok=True)
(RUNS / "plan.txt").write_text(PLAN.text() + "\n")

# %% stage 1: pre-training on the older sources (union of species)
INIT_WEIGHTS = None
PRETRAIN_SUMMARY = None
if PRE_TABLE is not None:
    print(f"pre-training: {len(PRE_TABLE)} recordings, {len(PRE_CLASSES)} species")
    PRETRAIN_SUMMARY = run_training(
        CONFIG.replace(stage="pretrain", folds=(PRETRAIN_VALID_FOLD,)),
        PRE_TABLE,
        PRE_CLASSES,
        RUNS / "pretrain",
        nproc=NPROC,
        cache_dir=CACHE_DIR,
        noise_bank=NOISE_BANK,
        deadline=DEADLINE,
    )
    INIT_WEIGHTS = RUNS / "pretrain" / f"fold{PRETRAIN_VALID_FOLD}" / "best.pt"
else:
    start = "ImageNet" if CONFIG.pretrained else "random"
    print(f"no pre-training (no sources attached, or PRETRAIN off): starting from {start} weights")

# %% stage 2: fine-tuning on the 2023 species, every fold (or CONFIG.folds)
FINETUNE_SUMMARY = None
if PRETRAIN_SUMMARY is not None and not PRETRAIN_SUMMARY["complete"]:
    print("pre-training stopped at the time budget: run the notebook again to continue")
else:
    FINETUNE_SUMMARY = run_training(
        CONFIG.replace(stage="finetune"),
        COMP_TABLE,
        CLASSES,
        RUNS / "finetune",
        nproc=NPROC,
        init_weights=INIT_WEIGHTS,
        cache_dir=CACHE_DIR,
        noise_bank=NOISE_BANK,
        deadline=DEADLINE,
    )

# %% results: loss and validation padded cmAP per fold, then the per-species report
from lib.report import run_species_report

for stage, summary in (("pretrain", PRETRAIN_SUMMARY), ("finetune", FINETUNE_SUMMARY)):
    if summary is None:
        continue
    oof, mean = summary.get("oof_cmap"), summary.get("mean_fold_cmap")
    print(
        f"{stage}: complete={summary['complete']}, out-of-fold padded cmAP {oof}, fold mean {mean}"
    )
    if summary.get("folds"):
        display(pd.DataFrame(summary["folds"]).set_index("fold"))
    if (RUNS / stage / "history.png").is_file():
        display(Image(filename=str(RUNS / stage / "history.png")))
    skipped = RUNS / stage / "skipped_files.csv"  # unreadable or silent recordings, with why
    if skipped.is_file():
        listed = pd.read_csv(skipped)
        print(f"{stage}: {len(listed)} recording(s) skipped, listed in {skipped}")
        if len(listed):
            display(listed["source"].value_counts().rename("skipped files per source"))
            display(listed.head(10))
    if (RUNS / stage / "oof.csv").is_file():  # per species: AP, worst, confused pairs
        SPECIES_REPORT = run_species_report(RUNS / stage)
        SPECIES_REPORT.save(RUNS / stage)  # per_species_ap.csv, confused_pairs.csv, .png
        print(f"{stage}: per-species report (definitions: lib/report.py, inlined above)")
        print(SPECIES_REPORT.text())
        display(Image(filename=str(RUNS / stage / "per_species_ap.png")))

# %% the export library (inlined here; imports only)
from lib.export import export_run
from lib.onnxruntime_setup import ensure_onnxruntime

# %% export the fine-tuned folds to ONNX (the models dataset for the inference notebook)
if FINETUNE_SUMMARY is not None and FINETUNE_SUMMARY["complete"]:
    print("onnxruntime", ensure_onnxruntime(None, allow_download=True))  # not in Kaggle's image
    EXPORTED = export_run(RUNS / "finetune", WORKING)
    print("exported:", [p.name for p in EXPORTED])
else:
    print("training is not complete: nothing exported; run the notebook again to continue")
print(f"notebook time: {(time.time() - STARTED) / 60:.1f} min")
