"""Training, the folds loop: every fold (or some), resumable, on 1 or N GPUs or the CPU.

Top to bottom: a fold's data -> model (ImageNet or pre-trained weights) -> AdamW + cosine ->
per epoch: train (mixup of raw waveforms, log-mel + SpecAugment on the device, SED loss),
validate (config.metric, the competition's: padded cmAP for 2023, ROC-AUC for 2024-2026, on
the first 5 s of every held-out recording, or a labelled soundscape segment), save. Pre-training
(config.stage="pretrain", union of species) and fine-tuning ("finetune", 2023 species,
`init_weights` = the pre-trained best.pt) are the same code.

Run directory, the contract with lib.export and the notebooks:
    out_dir/config.json, classes.json, folds.csv  what the run is; a resume must match them
    out_dir/durations.csv, skipped_files.csv   header pass, bad recordings (lib.train_data)
    out_dir/loader_findings.csv   cut files' real lengths, silence verdicts (lib.dataset)
    out_dir/fold<k>/last.pt      model, optimizer, scheduler, scaler, epoch, best score, history
    out_dir/fold<k>/best.pt      save_checkpoint(...): config, classes, epoch, score, oof
    out_dir/fold<k>/history.csv  epoch, train_loss, valid_loss, valid_score, valid_cmap, lr,
                                 seconds (valid_cmap: = valid_score when the metric is cmAP)
    out_dir/fold<k>/oof.csv      row_id, fold, primary_label, one probability per class
    out_dir/fold<k>/result.json  written last: the fold is finished and skipped from then on
    out_dir/oof.csv, summary.json, history.png   all folds so far; metric, oof_score

Files are written to a temporary name and renamed (lib.atomic): a killed run leaves the old
file or the new one, never half of one. last.pt is saved after every epoch, so a restart loses
at most the epoch in flight; best.pt is replaced only by a strictly better score. Every epoch's
randomness derives from (seed, fold, epoch, rank) (lib.fold_trainer), so a resumed run replays the
epochs an uninterrupted one would: bit for bit on the CPU.

Several GPUs: `run_training` launches torchrun (lib.distributed) on a script of this library;
every process runs `train_folds` on its shard of the data, rank 0 alone writes files, and the
validation clips are split over the ranks and gathered before scoring.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from lib.atomic import atomic_write
from lib.augment import WaveAugment
from lib.config import Config
from lib.dataset import (
    AudioCache,
    ClipDataset,
    default_cache_dir,
    make_cache,
    make_loader,
    set_epoch,
)
from lib.distributed import (
    DDP_CHILD_ENV,
    DistInfo,
    barrier,
    broadcast_object,
    close_distributed,
    device_for,
    dist_info,
    gather_objects,
    init_distributed,
    library_script,
    run_streaming,
    torchrun_command,
)
from lib.fold_trainer import (
    FoldTrainer,
    Progress,
    build_trainer,
    derive_seed,
    restore_last,
    save_last,
    saved_best_score,
    seed_everything,
    train_one_epoch,
    validate,
)
from lib.model import load_checkpoint, save_checkpoint, unwrap
from lib.noise import NoiseBank
from lib.run_dir import (
    CMAP,
    HISTORY_COLUMNS,
    metric_label,
    prepare_folds,
    prepare_run_dir,
    summarize_run,
    with_row_ids,
    write_csv_atomic,
    write_json_atomic,
)
from lib.sources import split_fold
from lib.train_data import findings_for, index_recordings, skip_log_for

# --- data ------------------------------------------------------------------------------------


def fold_loaders(
    config: Config,
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    classes: list[str],
    cache: AudioCache | None,
    noise_bank: NoiseBank | None,
    info: DistInfo,
    skip_log=None,
    findings=None,
) -> tuple[DataLoader, DataLoader, ClipDataset]:
    """Training loader (random crops, waveform augmentation; sharded across ranks) and this
    rank's share of the validation clips (every world_size-th, gathered after prediction).
    `skip_log` and `findings`: the run's lists of skipped files and of what the loader learned
    about files (lib.train_data.skip_log_for, findings_for)."""
    augment = WaveAugment(config, noise_bank=noise_bank)
    train_ds = ClipDataset(train_df, classes, config, cache, True, augment, skip_log, findings)
    valid_ds = ClipDataset(valid_df, classes, config, cache, False, None, skip_log, findings)
    sampler = None
    if info.enabled:  # same number of samples per rank (padded), shuffled by (seed, epoch)
        sampler = DistributedSampler(train_ds, info.world_size, info.rank, seed=config.seed)
    per_rank = math.ceil(len(train_ds) / info.world_size)
    train_loader = make_loader(
        train_ds, config, shuffle=True, sampler=sampler, drop_last=per_rank >= config.batch_size
    )
    shard = Subset(valid_ds, range(info.rank, len(valid_ds), info.world_size))
    return train_loader, make_loader(shard, config, shuffle=False), valid_ds


# --- a fold ----------------------------------------------------------------------------------


def train_fold(
    config: Config,
    table: pd.DataFrame,
    classes: list[str],
    fold: int,
    out_dir: str | Path,
    device: str | torch.device | None = None,
    init_weights=None,
    cache_dir: str | Path | None = None,
    noise_bank: NoiseBank | None = None,
    deadline: float | None = None,
) -> dict:
    """Train fold `fold` of `table` (column `fold`; -1 = always training) into out_dir/fold<k>.

    Resumes from last.pt if present; returns the saved result at once if the fold finished.
    `deadline` (time.time() seconds): stop after the epoch that would let the next one end
    past it (a Kaggle session's limit); the run then continues when called again.
    Returns {fold, best_score, best_epoch, epochs_done, complete, ...}.
    """
    info, out_dir = dist_info(), Path(out_dir)
    fold_dir = out_dir / f"fold{fold}"
    prepare_run_dir(out_dir, config, classes, info)
    if (fold_dir / "result.json").is_file():
        if info.is_main:
            print(f"fold {fold}: finished earlier, skipped ({fold_dir / 'result.json'})")
        return {**json.loads((fold_dir / "result.json").read_text()), "skipped": True}
    table = with_row_ids(table)
    train_df, valid_df = split_fold(table, fold)
    cache = make_cache(config, cache_dir, share=1 / info.world_size)
    loaders = fold_loaders(config, train_df, valid_df, classes, cache, noise_bank, info,
                           skip_log_for(out_dir), findings_for(out_dir))  # fmt: skip
    device = device_for(info, device)
    t = build_trainer(config, classes, fold, device, info, len(loaders[0]), init_weights)
    progress = Progress()
    if (fold_dir / "last.pt").is_file():
        progress = restore_last(fold_dir / "last.pt", t)
        if info.is_main:
            print(f"fold {fold}: resuming at epoch {progress.next_epoch} of {config.epochs}")
    progress.best_score = max(progress.best_score, saved_best_score(fold_dir / "best.pt"))
    if info.is_main:
        print(f"fold {fold}: {len(train_df)} train / {len(valid_df)} valid recordings, "
              f"{info.world_size} process(es) on {device}, amp={t.amp}")  # fmt: skip
    complete = run_epochs(t, loaders, valid_df["row_id"].tolist(), fold_dir, progress, deadline)
    if complete:
        check_replicas(t)
    return finish_fold(t, fold_dir, valid_df, progress, complete, len(train_df))


def run_epochs(t, loaders, row_ids, fold_dir: Path, progress: Progress, deadline) -> bool:
    """Epochs progress.next_epoch .. config.epochs - 1; False if stopped by the deadline."""
    with epoch_bar(t, progress.next_epoch) as bar:
        return _run_epochs(t, loaders, row_ids, fold_dir, progress, deadline, bar)


def epoch_bar(t: FoldTrainer, done: int) -> tqdm:
    """The fold's bar counting epochs, left in the saved notebook (the step and validation bars
    inside it are transient); rank 0 only."""
    return tqdm(total=t.config.epochs, initial=done, desc=f"{t.config.stage} fold {t.fold}",
                unit="epoch", disable=not t.info.is_main)  # fmt: skip


def _run_epochs(t, loaders, row_ids, fold_dir, progress, deadline, bar) -> bool:
    train_loader, valid_loader, valid_ds = loaders
    while progress.next_epoch < t.config.epochs:
        epoch, start = progress.next_epoch, time.time()
        seed = derive_seed(t.config.seed, t.fold, epoch, t.info.rank)
        seed_everything(seed)  # dropout; the data are seeded per item, mixup/SpecAugment below
        t.generator.manual_seed(seed)
        set_epoch(train_loader, epoch)
        lr = t.optimizer.param_groups[0]["lr"]
        train_loss = train_one_epoch(t, train_loader, epoch)
        score, valid_loss, probs = validate(t, valid_loader, valid_ds, row_ids)
        row = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
               "valid_score": score, "valid_cmap": score if t.config.metric == CMAP else None,
               "lr": lr, "seconds": time.time() - start}  # fmt: skip
        # The first epoch always saves best.pt: a score undefined on this fold (NaN, ROC-AUC
        # with no class both present and absent) must still leave a model and its predictions.
        improved = score > progress.best_score or progress.best_epoch < 0
        if improved:
            progress.best_score, progress.best_epoch = score, epoch
        progress.history.append(row)
        progress.next_epoch = epoch + 1
        if t.info.is_main:
            save_epoch(t, fold_dir, progress, probs if improved else None, row_ids)
            bar.write(_epoch_line(t, row, improved))
        bar.update(1)
        barrier(t.info)
        if progress.next_epoch < t.config.epochs and _out_of_time(deadline, row["seconds"], t.info):
            return False
    return True


def save_epoch(t: FoldTrainer, fold_dir: Path, progress: Progress, best_probs, row_ids) -> None:
    """best.pt (if improved, with its out-of-fold predictions), history.csv, then last.pt."""
    if best_probs is not None:
        oof = {"row_id": list(row_ids), "probs": torch.from_numpy(best_probs)}
        save_checkpoint(fold_dir / "best.pt", t.model, t.config, t.classes,
                        epoch=progress.best_epoch, score=progress.best_score, fold=t.fold,
                        oof=oof)  # fmt: skip
    rows = [{"valid_score": row.get("valid_cmap"), **row} for row in progress.history]
    write_csv_atomic(fold_dir / "history.csv", pd.DataFrame(rows, columns=HISTORY_COLUMNS))
    save_last(fold_dir / "last.pt", t, progress)


def _epoch_line(t: FoldTrainer, row: dict, improved: bool) -> str:
    return (
        f"fold {t.fold} epoch {row['epoch'] + 1}/{t.config.epochs}: train loss "
        f"{row['train_loss']:.4f}, valid loss {row['valid_loss']:.4f}, "
        f"{metric_label(t.config.metric)} {row['valid_score']:.4f}"
        f"{' (best)' if improved else ''}, lr {row['lr']:.2e}, "
        f"{row['seconds']:.0f} s"
    )


def check_replicas(t: FoldTrainer) -> None:
    """DDP must leave identical weights on every rank; a difference means a broken setup."""
    if not t.info.enabled:
        return
    total = sum(float(p.detach().double().sum()) for p in unwrap(t.model).parameters())
    sums = gather_objects(total, t.info)
    if len(set(sums)) != 1:
        raise RuntimeError(f"DDP replicas diverged: parameter sums per rank {sums}")


def finish_fold(t, fold_dir: Path, valid_df, progress: Progress, complete: bool, n_train: int):
    """Write the fold's oof.csv (from best.pt, so they always agree) and result.json."""
    result = {
        "fold": t.fold,
        "metric": t.config.metric,
        "best_score": progress.best_score,
        "best_epoch": progress.best_epoch,
        "epochs_done": progress.next_epoch,
        "epochs": t.config.epochs,
        "complete": complete,
        "world_size": t.info.world_size,
        "n_train": n_train,
        "n_valid": len(valid_df),
        "seconds": float(sum(row["seconds"] for row in progress.history)),
    }
    if complete and t.info.is_main:
        oof = load_checkpoint(fold_dir / "best.pt")["oof"]
        frame = pd.DataFrame(oof["probs"].numpy(), columns=t.classes)
        labels = valid_df.set_index("row_id").loc[oof["row_id"], "primary_label"].to_numpy()
        frame.insert(0, "primary_label", labels)
        frame.insert(0, "fold", t.fold)
        frame.insert(0, "row_id", oof["row_id"])
        write_csv_atomic(fold_dir / "oof.csv", frame)
        write_json_atomic(fold_dir / "result.json", result)
    barrier(t.info)
    return result


# --- all folds, and the same on several GPUs -------------------------------------------------


def train_folds(
    config: Config,
    table: pd.DataFrame,
    classes: list[str],
    out_dir: str | Path,
    device: str | torch.device | None = None,
    init_weights=None,
    cache_dir: str | Path | None = None,
    noise_bank: NoiseBank | None = None,
    deadline: float | None = None,
) -> dict:
    """Train config.folds (empty: every fold) into out_dir; finished folds are skipped.

    The file headers are read first (durations; unreadable recordings dropped and listed in
    out_dir/skipped_files.csv: lib.train_data), the table folded
    (unless it has a `fold` column) and saved as folds.csv. `init_weights` starts every fold
    (e.g. the pre-training run's best.pt). Returns summary.json's content: per-fold results,
    the mean of the folds' best scores and the score of all out-of-fold clips together
    (`oof_score`, by config.metric, named in `metric`).
    """
    info, out_dir = dist_info(), Path(out_dir)
    prepare_run_dir(out_dir, config, classes, info)
    table = prepare_folds(index_recordings(table, config, out_dir, info), config, out_dir, info)
    folds = list(config.folds) or sorted(int(f) for f in table["fold"].unique() if f >= 0)
    if not folds:
        raise ValueError("train_folds: the table has no validation fold (every class is rare?)")
    results, summary, epoch_seconds = [], {"folds": []}, 0.0
    for fold in folds:
        if _out_of_time(deadline, epoch_seconds, info):
            break
        result = train_fold(config, table, classes, fold, out_dir, device, init_weights,
                            cache_dir, noise_bank, deadline)  # fmt: skip
        results.append(result)
        epoch_seconds = result["seconds"] / max(result["epochs_done"], 1)
        if info.is_main:
            summary = summarize_run(out_dir, table, classes, config)
        if not result["complete"]:
            break
    complete = len(results) == len(folds) and all(r["complete"] for r in results)
    if info.is_main:
        summary = {**summary, "complete": complete, "requested_folds": folds}
        write_json_atomic(out_dir / "summary.json", summary)
        print(_summary_line(summary), flush=True)
    barrier(info)
    return summary if info.is_main else {"folds": results, "complete": complete}


def _out_of_time(deadline: float | None, epoch_seconds: float, info: DistInfo) -> bool:
    """Whether one more epoch (as long as the last fold's) would end past the deadline;
    rank 0 decides for all, so every rank stops at the same point."""
    late = deadline is not None and time.time() + epoch_seconds > deadline
    return bool(broadcast_object(late, info))


def _summary_line(summary: dict) -> str:
    scores = ", ".join(f"fold {r['fold']} {r['best_score']:.4f}" for r in summary["folds"])
    oof, metric = summary.get("oof_score"), metric_label(summary.get("metric", CMAP))
    state = "complete" if summary["complete"] else "INCOMPLETE (run again to continue)"
    return f"run {state}: {scores or 'no fold finished'}" + (
        f"; out-of-fold {metric} {oof:.4f}" if oof is not None else ""
    )


def ddp_main(argv: list[str] | None = None) -> None:
    """What each process torchrun starts runs: `train_folds` with the job file's arguments
    (written by `launch_ddp`). From a notebook: the script launch_ddp writes; from the
    repository: `torchrun --standalone --nproc_per_node=2 -m lib.train_folds <job.json>`
    (`<out_dir>/ddp/job.json`).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: torchrun --nproc_per_node=N <script> <job.json>")
    job = json.loads(Path(args[0]).read_text())
    info = init_distributed()
    print(f"rank {info.rank}/{info.world_size} started on {device_for(info)}", flush=True)
    try:
        train_folds(
            Config.from_dict(job["config"]),
            pd.read_pickle(job["table"]),
            job["classes"],
            job["out_dir"],
            init_weights=job["init_weights"],
            cache_dir=job["cache_dir"],
            noise_bank=NoiseBank.from_dict(job["noise_bank"]) if job["noise_bank"] else None,
            deadline=job["deadline"],
        )
        print(f"rank {info.rank}/{info.world_size} done", flush=True)
    finally:
        close_distributed()


def launch_ddp(
    config: Config,
    table: pd.DataFrame,
    classes: list[str],
    out_dir: str | Path,
    nproc: int,
    init_weights=None,
    cache_dir: str | Path | None = None,
    noise_bank: NoiseBank | None = None,
    deadline: float | None = None,
) -> dict:
    """`train_folds` over `nproc` processes (one per GPU) started by torchrun; returns its summary.

    Writes out_dir/ddp/: job.json (the arguments), table.pkl and train_ddp.py (the library as
    a script: lib.distributed.library_script), then runs torchrun and forwards its output.
    """
    if os.environ.get(DDP_CHILD_ENV):
        raise RuntimeError("launch_ddp called inside a torchrun worker; call train_folds there")
    out_dir = Path(out_dir).absolute()
    job_dir = out_dir / "ddp"
    if init_weights is not None and not isinstance(init_weights, (str, Path)):
        atomic_write(job_dir / "init.pt", lambda tmp: torch.save(init_weights, tmp))
        init_weights = job_dir / "init.pt"
    atomic_write(job_dir / "table.pkl", lambda tmp: table.to_pickle(tmp, compression=None))
    job = {
        "config": config.to_dict(),
        "table": str(job_dir / "table.pkl"),
        "classes": list(classes),
        "out_dir": str(out_dir),
        "init_weights": None if init_weights is None else str(Path(init_weights).absolute()),
        "cache_dir": str(Path(cache_dir or default_cache_dir()).absolute()),
        "noise_bank": noise_bank.to_dict() if noise_bank else None,
        "deadline": deadline,
    }
    write_json_atomic(job_dir / "job.json", job)
    script = job_dir / "train_ddp.py"
    atomic_write(script, lambda tmp: tmp.write_text(library_script(ddp_main, "ddp_main()")))
    env = {**os.environ, DDP_CHILD_ENV: "1"}
    run_streaming(torchrun_command(script, [job_dir / "job.json"], nproc), env=env)
    return json.loads((out_dir / "summary.json").read_text())


def run_training(
    config: Config,
    table: pd.DataFrame,
    classes: list[str],
    out_dir: str | Path,
    nproc: int | None = None,
    **kwargs,
) -> dict:
    """The notebook's one call: `launch_ddp` when several GPUs (or nproc > 1), else
    `train_folds` in this process. kwargs: init_weights, cache_dir, noise_bank, deadline."""
    if nproc is None:
        nproc = torch.cuda.device_count()  # NVML: does not initialise CUDA in this process
    if nproc > 1 and not os.environ.get(DDP_CHILD_ENV):
        return launch_ddp(config, table, classes, out_dir, nproc, **kwargs)
    return train_folds(config, table, classes, out_dir, **kwargs)


if __name__ == "__main__":
    ddp_main()
