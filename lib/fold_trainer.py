"""One fold's machinery: model and optimiser construction, the training step, validation,
and the resume checkpoint. lib.train_folds drives it epoch by epoch.

The step, as in the recipe: a batch of raw 5-second waveforms (B, clip_samples) -> mixup on
the waveforms (targets: union) -> log-mel on the device (B, 1, n_mels, frames) -> SpecAugment
-> SED model -> 1.0 x BCE(clip) + 0.5 x BCE(max over frames), label smoothing 0.1 -> AdamW,
then one step of the cosine schedule (stepped per optimisation step, not per epoch, so short
runs anneal smoothly too). fp32 by default; with config.amp on a GPU the forward runs under
float16 autocast with a GradScaler.

Randomness per epoch comes from seeds derived from (config.seed, fold, epoch, rank): mixup and
SpecAugment draw from `FoldTrainer.generator` (CPU), dropout from torch's global RNG, crops and
waveform augmentations from per-item seeds in lib.dataset. Nothing random carries over from one
epoch to the next, so last.pt needs no RNG states and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lib.atomic import atomic_write
from lib.augment import SpecAugment, mixup
from lib.config import Config
from lib.dataset import AudioCache, ClipDataset, make_loader
from lib.distributed import DistInfo, broadcast_buffers, gather_objects, sum_across
from lib.features import LogMel
from lib.losses import SEDLoss
from lib.model import build_model, load_checkpoint, load_weights, unwrap, window_probabilities
from lib.run_dir import score_clips, with_row_ids


def derive_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integer keys, e.g. (seed, fold, epoch, rank)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def init_fold_model(config: Config, classes: list[str], seed: int, init_weights=None):
    """A fresh model (same on every rank), optionally started from other weights.

    `init_weights`: a checkpoint path or state dict (e.g. the pre-training stage's best.pt);
    tensors of another shape (the head of another species count) keep their fresh values.
    Returns (model, names of the tensors not taken from init_weights).
    """
    torch.manual_seed(seed)
    model = build_model(
        config, len(classes), pretrained=False if init_weights is not None else None
    )
    if init_weights is None:
        return model, []
    payload = init_weights if isinstance(init_weights, dict) else load_checkpoint(init_weights)
    return model, load_weights(model, payload.get("model", payload))


def freeze_unused(model: nn.Module, config: Config) -> list[str]:
    """Freeze the parameters the forward never uses (MobileNetV3's post-pool conv_head):
    DDP would otherwise wait for their gradients. One eval-mode pass, no state changed."""
    was_training = model.training
    model.eval()
    out = model(torch.zeros(1, config.in_channels, config.n_mels, 64))
    (out.clip_logits.sum() + out.frame_logits.sum()).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name, param in model.named_parameters():
        param.grad = None
        if name in unused:
            param.requires_grad_(False)
    model.train(was_training)
    return unused


def make_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    if config.optimizer != "adamw":
        raise ValueError(f"optimizer {config.optimizer!r} not supported (the recipe's: 'adamw')")
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(optimizer, config: Config, steps_per_epoch: int):
    """Cosine from config.lr to config.min_lr over all steps of all epochs, no warm-up."""
    if config.scheduler != "cosine":
        raise ValueError(f"scheduler {config.scheduler!r} not supported (the recipe's: 'cosine')")
    total = max(1, config.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=config.min_lr)


@dataclass
class FoldTrainer:
    """Everything one fold trains with, so the step functions take one argument."""

    config: Config
    classes: list[str]
    fold: int
    model: nn.Module  # DistributedDataParallel-wrapped when several processes
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    features: LogMel
    specaug: SpecAugment
    criterion: SEDLoss
    device: torch.device
    info: DistInfo
    amp: bool
    generator: torch.Generator = field(default_factory=torch.Generator)


@dataclass
class Progress:
    """What survives an epoch: saved in last.pt, restored on resume."""

    next_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)


def build_trainer(config, classes, fold, device, info, steps_per_epoch, init_weights=None):
    """Model, optimiser, schedule, features and loss for one fold, on `device`."""
    model, skipped = init_fold_model(config, classes, derive_seed(config.seed, fold), init_weights)
    if init_weights is not None and info.is_main:
        print(f"fold {fold}: weights from {_describe(init_weights)}; fresh: {skipped or 'none'}")
    freeze_unused(model, config)
    model.to(device)
    optimizer = make_optimizer(model, config)
    amp = bool(config.amp and device.type == "cuda")  # AMP is a GPU option; the CPU runs fp32
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return FoldTrainer(
        config=config,
        classes=list(classes),
        fold=fold,
        model=model,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config, steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda", enabled=amp),
        features=LogMel(config).to(device),
        specaug=SpecAugment(config).train(),
        criterion=SEDLoss(config),
        device=device,
        info=info,
        amp=amp,
    )


def _describe(weights) -> str:
    return str(weights) if isinstance(weights, (str, Path)) else "a state dict"


def train_one_epoch(t: FoldTrainer, loader: DataLoader, epoch: int) -> float:
    """One pass over this rank's training batches; returns the mean loss over all ranks."""
    t.model.train()
    total, count = 0.0, 0
    desc = f"fold {t.fold} epoch {epoch} train"
    bar = tqdm(loader, desc=desc, leave=False, disable=not t.info.is_main, mininterval=1.0)
    for waves, targets in bar:
        waves = waves.to(t.device, non_blocking=True)  # (B, clip_samples)
        targets = targets.to(t.device, non_blocking=True)  # (B, classes)
        c = t.config
        waves, targets = mixup(waves, targets, c.mixup_alpha, c.mixup_p, t.generator)
        with torch.no_grad():
            mel = t.specaug(t.features(waves), t.generator)  # (B, 1, n_mels, frames)
        with torch.autocast(t.device.type, dtype=torch.float16, enabled=t.amp):
            loss = t.criterion(t.model(mel), targets)
        t.optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
        t.scheduler.step()
        total += float(loss.detach()) * len(waves)
        count += len(waves)
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
    total, count = sum_across([total, count], t.info, t.device)
    return total / max(count, 1.0)


@torch.no_grad()
def predict_clips(
    model: nn.Module,
    loader: DataLoader,
    features: LogMel,
    criterion: SEDLoss,
    device: torch.device,
    amp: bool = False,
    desc: str | None = None,
    output: str = "clip",
) -> tuple[np.ndarray, float]:
    """Clip-wise probabilities (n, classes) of the loader's clips and their summed loss.

    Give the bare model under DDP: a DDP forward is a collective, and ranks hold different
    numbers of validation clips.
    """
    model.eval()
    probs, loss_sum = [], 0.0
    for waves, targets in tqdm(loader, desc=desc, leave=False, disable=desc is None):
        mel = features(waves.to(device, non_blocking=True))  # (B, 1, n_mels, frames)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = model(mel)
        out = type(out)(*(x.float() for x in out))
        loss_sum += float(criterion(out, targets.to(device))) * len(waves)
        probs.append(window_probabilities(out, output).cpu().numpy())  # (B, classes)
    empty = np.zeros((0, _num_classes(model)), dtype=np.float32)
    return (np.concatenate(probs) if probs else empty), loss_sum


def _num_classes(model: nn.Module) -> int:
    """Number of classes of an SED model (its head's output channels)."""
    return int(unwrap(model).head.classifier.out_channels)


def validate(t: FoldTrainer, loader: DataLoader, valid_ds: ClipDataset, row_ids) -> tuple:
    """(score by config.metric, mean loss, probabilities (n_valid, classes)), identical on
    every rank."""
    broadcast_buffers(unwrap(t.model), t.info)  # rank 0's batch-norm statistics: the saved ones
    desc = f"fold {t.fold} valid" if t.info.is_main else None
    part = predict_clips(
        unwrap(t.model), loader, t.features, t.criterion, t.device, t.amp, desc,
        t.config.window_output,
    )  # fmt: skip
    shards = gather_objects(part, t.info)
    probs = np.zeros((len(valid_ds), len(t.classes)), dtype=np.float32)
    for rank, (part, _) in enumerate(shards):
        probs[rank :: t.info.world_size] = part  # rank r predicted clips r, r + world, ...
    loss = sum(loss_sum for _, loss_sum in shards) / max(len(valid_ds), 1)
    score = score_clips(row_ids, valid_ds.targets, probs, t.classes, t.config.metric)
    return score, loss, probs


def evaluate_model(
    model: nn.Module,
    config: Config,
    table: pd.DataFrame,
    classes: list[str],
    cache: AudioCache | None,
    device: str | torch.device = "cpu",
) -> tuple[float, np.ndarray]:
    """(score by config.metric, probabilities) of `model` on the first clip of every
    recording in `table`, scored like validation; one process. For baselines and checking a
    best.pt."""
    device = torch.device(device)
    dataset = ClipDataset(table, classes, config, cache, train=False)
    loader = make_loader(dataset, config, shuffle=False)
    model = unwrap(model).to(device)
    features, criterion = LogMel(config).to(device), SEDLoss(config)
    probs, _ = predict_clips(
        model, loader, features, criterion, device, output=config.window_output
    )
    row_ids = with_row_ids(table)["row_id"].tolist()
    return score_clips(row_ids, dataset.targets, probs, classes, config.metric), probs


def save_last(path: Path, t: FoldTrainer, progress: Progress) -> None:
    """Everything a restart needs to continue after the last finished epoch."""
    payload = {
        "model": unwrap(t.model).state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict(),
        "next_epoch": progress.next_epoch,
        "best_score": progress.best_score,
        "best_epoch": progress.best_epoch,
        "history": progress.history,
        "config": t.config.to_dict(),
        "classes": t.classes,
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def restore_last(path: Path, t: FoldTrainer) -> Progress:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    unwrap(t.model).load_state_dict(payload["model"])
    t.optimizer.load_state_dict(payload["optimizer"])
    t.scheduler.load_state_dict(payload["scheduler"])
    t.scaler.load_state_dict(payload["scaler"])
    return Progress(
        payload["next_epoch"], payload["best_score"], payload["best_epoch"], payload["history"]
    )


def saved_best_score(path: Path) -> float:
    """Score recorded in best.pt (-inf if none): a restart must not replace it by a worse one,
    even when best.pt was saved by an epoch that last.pt does not know about."""
    return float(load_checkpoint(path).get("score", -math.inf)) if path.is_file() else -math.inf
