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
from lib.paths import find_competition, find_dataset, input_root, working_root
from lib.run_dir import pretraining_table
from lib.sources import class_list, make_folds, read_birdclef2023, read_sources
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
        "cache_max_seconds": 0.0,  # decoded seconds kept per recording; e.g. 60 if disk runs short
    }
)
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
NOISE_FILES = []
if NOISE_DATASET:
    noise_dir = find_dataset(NOISE_DATASET)
    NOISE_FILES = sorted(p for p in noise_dir.rglob("*") if p.suffix in (".ogg", ".wav", ".mp3"))
    print(f"background noise: {len(NOISE_FILES)} files in {noise_dir}")
try:
    earlier = find_dataset(RESUME_FROM) / "runs"
except FileNotFoundError:
    earlier = None
if earlier is not None and earlier.is_dir() and not RUNS.exists():
    shutil.copytree(earlier, RUNS)
    print(f"continuing the earlier run copied from {earlier}")

# %% data and folds (the same 2023 folds for both stages)
COMP_TABLE = read_birdclef2023(COMPETITION)
COMP_TABLE = make_folds(COMP_TABLE, CONFIG.n_folds, CONFIG.minor_class_threshold, CONFIG.seed)
CLASSES = class_list(COMP_TABLE)  # sorted: sample_submission's column order
print(f"2023: {len(COMP_TABLE)} recordings, {len(CLASSES)} species")
print(COMP_TABLE["fold"].value_counts().sort_index().rename("recordings per fold (-1: rare)"))

# %% stage 1: pre-training on the older sources (union of species)
INIT_WEIGHTS = None
PRETRAIN_SUMMARY = None
if PRETRAIN and SOURCE_ROOTS:
    PRE_TABLE = pretraining_table(read_sources(SOURCE_ROOTS), COMP_TABLE, PRETRAIN_VALID_FOLD)
    PRE_CLASSES = class_list(PRE_TABLE)
    print(f"pre-training: {len(PRE_TABLE)} recordings, {len(PRE_CLASSES)} species")
    PRETRAIN_SUMMARY = run_training(
        CONFIG.replace(stage="pretrain", folds=(PRETRAIN_VALID_FOLD,)),
        PRE_TABLE,
        PRE_CLASSES,
        RUNS / "pretrain",
        nproc=NPROC,
        noise_files=NOISE_FILES,
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
        noise_files=NOISE_FILES,
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
