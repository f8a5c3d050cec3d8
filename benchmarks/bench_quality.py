"""The recipe's claims as a table: the rehearsal's small model trained on the hard synthetic
setting (workbench.synthetic.hard) with the full recipe and with one part removed at a time.

Parts removed (one per row): background noise (`background_noise_p` 0), waveform mixup
(`mixup_p` 0), pre-training (fine-tune from scratch), the 0.5 x max-frame loss (clip loss only,
`frame_loss_weight` 0). Every variant uses the same competition and the same folds; each seed
changes the model's initialisation and the augmentation draws. Per run: out-of-fold padded cmAP
(first 5 s of every validated recording, lib.run_dir) and the padded cmAP of the hidden test
soundscapes (mean of the folds' window probabilities, the notebook's window output).

Pre-training is trained once per seed with the full recipe and shared by the variants that use
it (the time limit): so "no noise" and "no mixup" remove the part from fine-tuning only.

Run: `python benchmarks/bench_quality.py [--seeds 0 1] [--epochs 12] [--workdir DIR]`
(~30 min on 2 cores); `--quick` is a smoke test (< 1 min). Prints a markdown table of
mean +- sd over seeds; per-run numbers go to DIR/results.csv.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.audio import load_audio, make_windows  # noqa: E402
from lib.config import Config  # noqa: E402
from lib.features import LogMel  # noqa: E402
from lib.metric import padded_cmap  # noqa: E402
from lib.model import build_model, model_from_checkpoint, window_probabilities  # noqa: E402
from lib.noise import NoiseBank, noise_bank_from_2021  # noqa: E402
from lib.run_dir import fold_dirs, pretraining_table  # noqa: E402
from lib.sources import class_list, make_folds, read_birdclef2023, read_sources  # noqa: E402
from lib.train_folds import run_training  # noqa: E402
from workbench.rehearsal import REHEARSAL_TRAIN_CONFIG  # noqa: E402
from workbench.synthetic.hard import HardSpec  # noqa: E402
from workbench.synthetic.hard_competition import (  # noqa: E402
    HARD_PRETRAIN_SOURCES,
    make_hard_competition,
)

FOLD_SEED = 42  # the folds never change with the training seed
# The rehearsal's small model with the recipe's augmentation on (the synthetic default rehearsal
# turns background noise off: it has no noise recordings; the hard setting has).
BENCH_CONFIG = {
    **REHEARSAL_TRAIN_CONFIG,
    "background_noise_p": Config().background_noise_p,
    "n_folds": 3,  # 5 folds x 10 runs do not fit in 30 minutes on 2 cores
    "epochs": 12,
    "num_workers": 0,
}
# Twice the rehearsal's test (48 x 120 s = 1152 windows): the padded cmAP of one trained model
# moved by sd 0.02-0.025 across draws of the 24-soundscape test (benchmarks/RESULTS.md).
BENCH_SPEC = {"n_soundscapes": 48}


@dataclass(frozen=True)
class Variant:
    name: str
    slug: str  # its run folder
    changes: dict = field(default_factory=dict)
    pretrain: bool = True


VARIANTS = (
    Variant("full recipe", "full"),
    Variant("- background noise", "no_noise", {"background_noise_p": 0.0}),
    Variant("- waveform mixup", "no_mixup", {"mixup_p": 0.0}),
    Variant("- pre-training", "no_pretrain", pretrain=False),
    Variant("- 0.5 x max-frame loss (clip loss only)", "clip_loss_only",
            {"frame_loss_weight": 0.0}),
)  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    variant: str
    seed: int
    soundscape_cmap: float
    oof_cmap: float
    seconds: float


def noise_bank(root: Path) -> NoiseBank:
    """The field background shipped as BirdCLEF 2021 train_soundscapes (all nocall), read the
    way the training notebook reads it."""
    return noise_bank_from_2021(root / "birdclef-2021")


def pretrain_sources(root: Path) -> dict[str, Path]:
    return {s.folder: root / s.folder for s in HARD_PRETRAIN_SOURCES}


@torch.no_grad()
def soundscape_probs(models, config: Config, paths: list[Path]) -> tuple[list[str], np.ndarray]:
    """(row ids, (windows, classes) mean of the models' window probabilities), like the
    inference notebook: 5-s windows, the config's window output, folds averaged."""
    features = LogMel(config)
    row_ids, probs = [], []
    for path in paths:
        windows, ends = make_windows(load_audio(path, config.sample_rate), config.sample_rate)
        mel = features(torch.from_numpy(windows))  # (windows, 1, n_mels, frames)
        fold_probs = [window_probabilities(m(mel), config.window_output) for m in models]
        probs.append(torch.stack(fold_probs).mean(0).numpy())  # (windows, classes)
        row_ids += [f"{path.stem}_{end}" for end in ends]
    return row_ids, np.concatenate(probs)


def score_soundscapes(models, config: Config, classes: list[str], root: Path) -> float:
    """Padded cmAP of `models` on root's hidden test soundscapes (root/solution.csv)."""
    solution = pd.read_csv(root / "solution.csv")
    paths = sorted((root / "birdclef-2023" / "test_soundscapes").glob("*.ogg"))
    row_ids, probs = soundscape_probs(models, config, paths)
    submission = pd.DataFrame(probs, columns=classes)
    submission.insert(0, "row_id", row_ids)
    return padded_cmap(solution, submission[["row_id", *solution.columns[1:]]])


def untrained_score(config: Config, classes: list[str], root: Path, seed: int) -> float:
    torch.manual_seed(seed)
    model = build_model(config, len(classes), pretrained=False).eval()
    return score_soundscapes([model], config, classes, root)


def run_variant(variant: Variant, seed: int, root: Path, table: pd.DataFrame, work: Path,
                base: dict, pretrained: dict[int, Path]) -> RunResult:  # fmt: skip
    """Fine-tune every fold for one variant and seed; score OOF and the soundscapes."""
    start = time.perf_counter()
    config = Config.from_dict({**base, **variant.changes, "seed": seed})
    classes = class_list(table)
    init = None
    if variant.pretrain:
        if seed not in pretrained:
            pretrained[seed] = pretrain(root, table, work / f"seed{seed}" / "pretrain", base, seed)
        init = pretrained[seed]
    out = work / f"seed{seed}" / variant.slug
    summary = run_training(config.replace(stage="finetune"), table, classes, out, nproc=1,
                           init_weights=init, noise_bank=noise_bank(root))  # fmt: skip
    models = [model_from_checkpoint(d / "best.pt")[0] for d in fold_dirs(out).values()]
    score = score_soundscapes(models, config, classes, root)
    return RunResult(variant.name, seed, score, float(summary["oof_cmap"]),
                     time.perf_counter() - start)  # fmt: skip


def pretrain(root: Path, table: pd.DataFrame, out: Path, base: dict, seed: int) -> Path:
    """The pre-training stage (full recipe) on the pre-training sources, validated on fold 0."""
    config = Config.from_dict({**base, "seed": seed, "stage": "pretrain", "folds": (0,)})
    pre = pretraining_table(read_sources(pretrain_sources(root)), table, 0)
    run_training(config, pre, class_list(pre), out, nproc=1, noise_bank=noise_bank(root))
    return out / "fold0" / "best.pt"


def earlier_results(path: Path, seeds: list[int]) -> list[RunResult]:
    """Runs of other seeds already in `path` (same workdir, same data): a later call with
    `--seeds 2` adds a seed to the table instead of starting over."""
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    return [RunResult(**row) for row in frame.to_dict("records") if row["seed"] not in seeds]


def spread(values: list[float], sign: bool = False) -> str:
    """'mean ± sd' over seeds (just the value for one seed)."""
    text = f"{statistics.mean(values):+.4f}" if sign else f"{statistics.mean(values):.4f}"
    return text if len(values) < 2 else f"{text} ± {statistics.stdev(values):.4f}"


def results_table(results: list[RunResult], untrained: float) -> str:
    """Markdown: one row per variant, mean ± sd over seeds, and the difference to the full
    recipe paired by seed (variant minus full recipe of the same seed, then mean ± sd): the
    seeds share their pre-training, which moves every variant of a seed together."""
    frame = pd.DataFrame([r.__dict__ for r in results])
    full = frame[frame.variant == VARIANTS[0].name].set_index("seed")
    lines = [
        "| variant | soundscape padded cmAP | Δ vs full (paired) | out-of-fold padded cmAP "
        "| Δ vs full (paired) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in frame.groupby("variant", sort=False):
        cells = []
        for column in ("soundscape_cmap", "oof_cmap"):
            paired = rows[rows.seed.isin(full.index)]
            deltas = (paired[column].to_numpy() - full.loc[paired.seed, column].to_numpy()).tolist()
            cells += [spread(rows[column].tolist()), spread(deltas, sign=True) if deltas else "–"]
        lines.append(f"| {name} (n={len(rows)}) | " + " | ".join(cells) + " |")
    lines.append(f"| untrained model (random weights) | {untrained:.4f} | | | |")
    return "\n".join(lines)


QUICK_SPEC = HardSpec(
    n_species=6, recordings_per_species=(6, 6), recording_seconds=(5.0, 6.0), rare_species=1,
    lookalike_pairs=1, absent_species=1, pretrain_shared=2, pretrain_extra_species=2,
    pretrain_recordings=(2, 2), unlisted_species=1, n_soundscapes=2, soundscape_seconds=30.0,
    n_noise_soundscapes=1, noise_soundscape_seconds=30.0,
)  # fmt: skip
QUICK_CONFIG = {"epochs": 1, "n_folds": 2, "n_mels": 32, "batch_size": 8}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=BENCH_CONFIG["epochs"])
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS],
                        help="variant names to run (default: all)")  # fmt: skip
    parser.add_argument("--spec", default="{}", help="JSON object of HardSpec fields")
    parser.add_argument("--workdir", default="work/bench_quality")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny data, 1 epoch")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 2 contended threads collapse (benchmarks/RESULTS.md)
    work = Path(args.workdir)
    spec_fields = json.loads(args.spec)
    spec = HardSpec(**{**(QUICK_SPEC.__dict__ if args.quick else BENCH_SPEC), **spec_fields})
    base = {**BENCH_CONFIG, "epochs": args.epochs, **(QUICK_CONFIG if args.quick else {})}
    root = work / "data"
    if (
        not (root / "solution.csv").is_file()
        or json.loads((work / "spec.json").read_text() if (work / "spec.json").is_file() else "{}")
        != spec.__dict__
    ):
        start = time.perf_counter()
        make_hard_competition(root, spec, overwrite=True)
        (work / "spec.json").write_text(json.dumps(spec.__dict__, default=list))
        print(f"hard setting written in {time.perf_counter() - start:.0f} s: {root}")
    runs = work / "runs"
    table = make_folds(read_birdclef2023(root / "birdclef-2023"), base["n_folds"],
                       base.get("minor_class_threshold", 5), FOLD_SEED)  # fmt: skip
    classes = class_list(table)
    untrained = untrained_score(Config.from_dict(base), classes, root, 0)
    print(f"untrained model: soundscape padded cmAP {untrained:.4f}")
    results, pretrained = earlier_results(work / "results.csv", args.seeds), {}
    chosen = [v for v in VARIANTS if v.name in args.variants]
    for seed in args.seeds:
        for variant in chosen:
            result = run_variant(variant, seed, root, table, runs, base, pretrained)
            results.append(result)
            print(f"{variant.name} seed {seed}: soundscapes {result.soundscape_cmap:.4f}, "
                  f"out-of-fold {result.oof_cmap:.4f} ({result.seconds:.0f} s)",
                  flush=True)  # fmt: skip
            pd.DataFrame([r.__dict__ for r in results]).to_csv(work / "results.csv", index=False)
    print(results_table(results, untrained))
    return 0


if __name__ == "__main__":
    sys.exit(main())
