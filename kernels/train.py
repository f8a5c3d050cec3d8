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
# # BirdCLEF: SED training (pre-train → fine-tune, 5 folds, ONNX export)
#
# The 24th-place recipe of BirdCLEF 2023: an `efficientnet_b0` SED model on 256-mel log-mel
# images of 5-second clips, pre-trained on the earlier BirdCLEF / Xeno-canto data when attached,
# fine-tuned on the competition's classes fold by fold, and exported to ONNX for the inference
# notebook. `COMPETITION` picks the year (its files, classes, sources and metric come from
# its profile); change the settings in the next cell; the library (folded code cells, one per
# module) needs no edits.
#
# ## Settings
# The recipe's values. `$BIRDCLEF_CONFIG` (a JSON object) overrides any of them without an edit
# (the local rehearsal shrinks the run that way); every field is documented in `Config`.

# %%
SETTINGS = dict(
    backbone="efficientnet_b0",  # timm backbone of the SED model
    pretrained=True,  # ImageNet weights (this notebook has internet)
    n_mels=256,  # log-mel bands (n_fft 1024, hop 320, 20-14000 Hz)
    clip_seconds=5.0,  # training clip = one submission window
    n_folds=5,  # stratified on primary_label; rare species in every fold
    folds=[],  # empty: every fold; e.g. [0, 1] to train only those
    epochs=50,  # per stage (pre-train and fine-tune)
    lr=1e-3,  # AdamW, cosine annealing to min_lr, no warm-up
    min_lr=1e-6,  # where the cosine schedule ends
    weight_decay=1e-2,  # AdamW decoupled weight decay
    label_smoothing=0.1,  # binary targets 1 -> 0.95, 0 -> 0.05
    amp=False,  # the recipe trains in fp32; True: float16 autocast on GPUs
    seed=42,  # folds, crops, augmentations: a rerun draws the same
    cache_budget_gb=0.0,  # decoded-audio cache (float16, 64 KB/s); set it if the plan says so
    cache_min_free_gb=2.0,  # the cache never leaves less than this free on its disk
    plan_loader_seconds=5.0,  # loader sampling per stage for the plan
    plan_warmup_steps=20,  # uncounted training steps that time the GPU (0: skip)
)
PRETRAIN = True  # pre-train first when the older sources are attached
PRETRAIN_VALID_FOLD = 0  # pre-training is validated on this fold of the competition's data
TIME_BUDGET_HOURS = 11.0  # stop at an epoch boundary after this; run again to continue
NPROC = None  # training processes; None: one per visible GPU (1 on the CPU)
NOISE_DATASET = None  # slug of an attached dataset of background-noise recordings, if any
CACHE_DIR = None  # None: a temporary folder; under /kaggle/working it survives a resume
COMPETITION = "birdclef-2023"  # the year (lib/competitions.py); build_kernels.py --competition
RESUME_FROM = f"{COMPETITION}-sed-train"  # earlier output to resume; "owner/slug" picks one

# %%
import contextlib
import shutil
import time

import pandas as pd
from IPython.display import Image, display

from lib.competitions import profile, profile_settings
from lib.config import Config
from lib.noise import find_noise_bank
from lib.paths import find_competition, find_dataset, find_notebook_output, input_root, working_root
from lib.report import run_species_report
from lib.run_dir import metric_label, pretraining_table
from lib.sources import class_list, make_folds, read_competition, read_sources, training_classes
from lib.throughput import StageData, make_training_plan
from lib.train_folds import run_training

STARTED = time.time()
PROFILE = profile(COMPETITION)  # the year's files, classes, sources, metric
CONFIG = Config.from_env({**profile_settings(PROFILE), **SETTINGS})  # then $BIRDCLEF_CONFIG
INPUT, WORKING = input_root(), working_root()
RUNS = WORKING / "runs"
DEADLINE = STARTED + TIME_BUDGET_HOURS * 3600
WORKING.mkdir(parents=True, exist_ok=True)
RECIPE = Config().to_dict()
print("changed from the recipe:", {k: v for k, v in CONFIG.to_dict().items() if v != RECIPE[k]})

# %% [markdown]
# ## Inputs
# The competition (required); the pre-training sources of its profile, the earlier BirdCLEF
# competitions and the Xeno-canto extended A-M / N-Z datasets (optional: without them the
# folds start from ImageNet weights); background noise (2021's `nocall` soundscape windows, plus
# `NOISE_DATASET`); and this notebook's earlier output to resume from (**Resume**: a session
# ends after 12 hours; training stops at an epoch boundary before `TIME_BUDGET_HOURS`; attach
# this notebook's output and run it again: finished folds are skipped, the fold in progress
# continues from its `last.pt`).

# %%
COMPETITION_DIR = find_competition(slug=COMPETITION)
SOURCE_SLUGS = {  # the inputs of a pre-training source; any other is its competition's slug
    "xeno-canto-extended": [
        "xeno-canto-extended",
        "xeno-canto-bird-recordings-extended-a-m",
        "xeno-canto-bird-recordings-extended-n-z",
    ],
}
SOURCE_ROOTS = {}
for name in PROFILE.pretrain_sources:
    found = []
    for slug in SOURCE_SLUGS.get(
        name, [name]
    ):  # competitions: <input>/<slug> or <input>/competitions/<slug>
        with contextlib.suppress(FileNotFoundError):
            found.append(find_competition(slug=slug))
            continue
        with contextlib.suppress(FileNotFoundError):  # datasets: <input>/datasets/<owner>/<slug>
            found.append(find_dataset(slug))
    if found:
        SOURCE_ROOTS[name] = found
print(f"competition: {PROFILE.title} at {COMPETITION_DIR}")
print(f"pre-training sources: {SOURCE_ROOTS or 'none attached'}")
NOISE_DIRS = [find_dataset(NOISE_DATASET)] if NOISE_DATASET else []
NOISE_BANK = find_noise_bank(SOURCE_ROOTS.get("birdclef-2021", []), NOISE_DIRS, CONFIG.clip_seconds)
print(NOISE_BANK.summary())
# resume: this notebook's earlier output, attached by `python build_kernels.py --resume`
try:
    EARLIER = find_notebook_output(RESUME_FROM, required="runs", setting="RESUME_FROM") / "runs"
except FileNotFoundError:
    EARLIER = None
if EARLIER is None:
    print(f"resume: NOT resuming (no earlier output of '{RESUME_FROM}' attached): a new run")
elif RUNS.exists():
    print(f"resume: NOT copying {EARLIER}: this session already has {RUNS}; continuing that")
else:
    shutil.copytree(EARLIER, RUNS)
    print(f"resume: RESUMING the earlier run copied from {EARLIER}")

# %% [markdown]
# ## Data and folds
# The competition's recordings in stratified folds (2026: its labelled train-soundscape
# segments too, each file whole in one fold); both stages validate on these folds. The classes
# are the submission's columns, in its order.

# %%
COMP_TABLE = read_competition(PROFILE, COMPETITION_DIR)
COMP_TABLE = make_folds(COMP_TABLE, CONFIG.n_folds, CONFIG.minor_class_threshold, CONFIG.seed)
CLASSES = training_classes(PROFILE, COMPETITION_DIR, COMP_TABLE)
print(f"{PROFILE.title}: {len(COMP_TABLE)} recordings, {len(CLASSES)} classes")
display(COMP_TABLE["fold"].value_counts().sort_index().rename("recordings per fold (-1: rare)"))

# %% [markdown]
# ## The plan
# Clips per epoch of each stage, the loader's measured clips/s on this machine's cores, the
# GPU's step rate (a few uncounted steps), the projected hours and the number of 12-hour
# sessions. When the loader, not the GPU, is the bottleneck, set `cache_budget_gb`. With two
# GPUs, training runs as `torchrun` over the library cells above (one process per GPU, DDP; the
# batch size is per process).

# %%
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
RUNS.mkdir(parents=True, exist_ok=True)
(RUNS / "plan.txt").write_text(PLAN.text() + "\n")
print(PLAN.text())

# %% [markdown]
# ## Stage 1 — pre-training
# On the older sources (the union of their species), validated on one competition fold. Skipped when
# no source is attached: the folds then start from ImageNet weights. Unreadable or silent
# recordings are skipped, never fatal, and listed in `runs/<stage>/skipped_files.csv`.

# %%
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

# %% [markdown]
# ## Stage 2 — fine-tuning
# Every fold (or `folds`) on the competition's classes, from the pre-trained weights if any.

# %%
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

# %% [markdown]
# ## Results
# Per stage: loss and the validation score per fold (the competition's metric: padded cmAP in
# 2023, ROC-AUC from 2024), the training history, the recordings skipped, and the per-species
# report (AP or ROC-AUC per species, the worst ten, the pairs most confused).

# %%
for stage, summary in (("pretrain", PRETRAIN_SUMMARY), ("finetune", FINETUNE_SUMMARY)):
    if summary is None:
        continue
    oof, mean = summary.get("oof_score"), summary.get("mean_fold_score")
    metric = metric_label(summary.get("metric", CONFIG.metric))
    print(f"{stage}: complete={summary['complete']}, out-of-fold {metric} {oof}, fold mean {mean}")
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
    if (RUNS / stage / "oof.csv").is_file():
        SPECIES_REPORT = run_species_report(RUNS / stage)
        SPECIES_REPORT.save(RUNS / stage)  # per-species CSV and plot, confused_pairs.csv
        print(SPECIES_REPORT.text())
        display(Image(filename=str(RUNS / stage / SPECIES_REPORT.plot_name)))

# %% [markdown]
# ## Export
# The fine-tuned folds as graph-optimised ONNX, checked against PyTorch, with `classes.json`,
# `config.json` and `export.json`: the content of the models dataset that the inference
# notebook reads (`/kaggle/working`).

# %%
from lib.export import export_run
from lib.onnxruntime_setup import ensure_onnxruntime

if FINETUNE_SUMMARY is not None and FINETUNE_SUMMARY["complete"]:
    print("onnxruntime", ensure_onnxruntime(None, allow_download=True))  # not in Kaggle's image
    EXPORTED = export_run(RUNS / "finetune", WORKING)
    print("exported:", [p.name for p in EXPORTED])
else:
    print("training is not complete: nothing exported; run the notebook again to continue")
print(f"notebook time: {(time.time() - STARTED) / 60:.1f} min")
