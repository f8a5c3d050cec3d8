"""Measured throughput for the training plan: the loader's clips/s per core on the real data
with augmentations, and the device's training steps/s from a few uncounted warm-up steps.

Nothing measured here touches the run: the loader is sampled on a dataset of its own (its crops
are seeded per item, like every dataset's), and the device is timed on a throw-away copy of the
model with its own optimiser and generator, so a run with the plan equals one without. The
arithmetic lives in lib.plan.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.audio import AudioError, audio_info
from lib.augment import SpecAugment, WaveAugment, mixup
from lib.config import Config
from lib.dataset import ClipDataset
from lib.features import LogMel
from lib.losses import SEDLoss
from lib.model import build_model
from lib.plan import StageFigures, TrainingPlan, mean_fold_clips


@dataclass(frozen=True)
class LoaderRate:
    """One core's pace through ClipDataset items (decode + augment), from `clips` items."""

    clips_per_s: float
    decode_share: float  # of the per-clip time spent reading/decoding the crop
    cached_clips_per_s: float  # estimate: the decode replaced by a read from the decoded cache
    clips: int


@dataclass(frozen=True)
class DeviceRate:
    train_steps_per_s: float  # per process, batch config.batch_size, fwd + bwd + AdamW
    valid_clips_per_s: float  # forward only
    name: str


def memmap_crop_seconds(config: Config, reads: int = 50) -> float:
    """Seconds to copy one crop out of a memory-mapped float16 .npy (what a cache hit costs,
    from the page cache; a cold disk read costs more)."""
    size = config.clip_samples
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crop.npy"
        np.save(path, np.zeros(12 * size, dtype=np.float16))
        wave = np.load(path, mmap_mode="r")
        starts = np.random.default_rng(0).integers(0, len(wave) - size, reads)
        start = time.perf_counter()
        for s in starts:
            np.array(wave[s : s + size], dtype=np.float32)
        seconds = (time.perf_counter() - start) / reads
        del wave
    return seconds


def measure_loader(
    dataset: ClipDataset, seconds: float, seed: int = 0, clock: Callable[[], float] | None = None
) -> LoaderRate:
    """Items of `dataset` (random order) for about `seconds` of `clock` (default wall time;
    the scale benchmark passes the process's CPU time), in this process: one core.

    Unreadable files are part of the pace (they are quick); their warnings are silenced here,
    training lists them.
    """
    clock = clock or time.perf_counter
    order = np.random.default_rng(seed).permutation(len(dataset))
    decode = total = 0.0
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for position, index in enumerate(np.resize(order, max(len(order), 100_000))):
            start = clock()
            rng = dataset.rng(int(index))
            clip = dataset.clip(int(index), rng)
            read = clock()
            if clip is None:
                clip = np.zeros(dataset.config.clip_samples, dtype=np.float32)
            if dataset.augment is not None:
                dataset.augment(clip, rng)
            end = clock()
            if position < 2:  # first calls: imports, soxr set-up
                continue
            decode, total, count = decode + read - start, total + end - start, count + 1
            if total >= seconds and count >= 3:
                break
    per_clip = total / max(count, 1)
    cached = per_clip - decode / max(count, 1) + memmap_crop_seconds(dataset.config)
    return LoaderRate(1.0 / per_clip, decode / max(total, 1e-12), 1.0 / cached, count)


def measure_header_ms(paths: list[str]) -> float | None:
    """Milliseconds per header read over `paths`, one after the other in this thread (the
    header pass's unit of work; unreadable files included, they are part of the pass). None
    when there are no paths."""
    if not paths:
        return None
    start = time.perf_counter()
    for path in paths:
        with contextlib.suppress(AudioError):
            audio_info(path)
    return (time.perf_counter() - start) * 1000.0 / len(paths)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_device(config: Config, n_classes: int, device, steps: int) -> DeviceRate | None:
    """`steps` training steps (the first quarter untimed) and a few validation batches on
    random clips, on a fresh model: the device's pace, whatever the loader does. None when
    steps <= 0."""
    if steps <= 0:
        return None
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    model = build_model(config, n_classes, pretrained=False).to(device)
    features, specaug = LogMel(config).to(device), SpecAugment(config).train()
    criterion, amp = SEDLoss(config), bool(config.amp and device.type == "cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    batch = config.batch_size
    waves = (0.1 * torch.randn(batch, config.clip_samples, generator=generator)).to(device)
    targets = torch.zeros(batch, n_classes, device=device)
    targets[:, 0] = 1.0
    warm = max(1, steps // 4)
    model.train()
    for step in range(steps):
        if step == warm:
            _sync(device)
            start = time.perf_counter()
        mixed, mixed_targets = mixup(waves, targets, config.mixup_alpha, config.mixup_p, generator)
        with torch.no_grad():
            mel = specaug(features(mixed), generator)  # (B, 1, n_mels, frames)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = criterion(model(mel), mixed_targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    _sync(device)
    train_rate = (steps - warm) / (time.perf_counter() - start)
    model.eval()
    batches = max(2, steps // 4)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        for k in range(batches + 1):
            if k == 1:
                _sync(device)
                start = time.perf_counter()
            model(features(waves))
    _sync(device)
    valid_rate = batches * batch / (time.perf_counter() - start)
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return DeviceRate(train_rate, valid_rate, _device_name(device))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"


@dataclass(frozen=True)
class StageData:
    """A stage as the notebook knows it before training: its table (with `fold`), classes,
    the folds it trains and its epochs."""

    name: str
    table: pd.DataFrame
    classes: list[str]
    folds: tuple[int, ...]
    epochs: int


def stage_figures(stage: StageData, config: Config, noise_bank=None) -> StageFigures:
    """Clips per epoch from the table, and the loader's pace measured on it."""
    folds = stage.table["fold"]
    train, valid = mean_fold_clips(
        len(stage.table), {k: int((folds == k).sum()) for k in stage.folds}
    )
    rate = None
    if config.plan_loader_seconds > 0 and len(stage.table):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no noise files" is said by the training itself
            augment = WaveAugment(config, noise_bank=noise_bank)
        dataset = ClipDataset(stage.table, stage.classes, config, None, True, augment)
        rate = measure_loader(dataset, config.plan_loader_seconds)
    return StageFigures(
        stage.name, len(stage.table), len(stage.classes), train, valid, stage.epochs,
        len(stage.folds), rate and rate.clips_per_s, rate and rate.cached_clips_per_s,
    )  # fmt: skip


def make_training_plan(
    config: Config,
    stages: list[StageData],
    nproc: int | None = None,
    device=None,
    noise_bank=None,
    session_hours: float = 11.0,
    export_minutes: float = 10.0,
) -> TrainingPlan:
    """Measure (loader per stage, device once) and return the plan; print `plan.text()`.

    `nproc`: training processes (None: one per visible GPU, else 1), as run_training uses.
    The device is timed on cuda:0 (or the CPU) without DDP: several GPUs are assumed to scale
    linearly, and the plan says so. The header pass is timed on the first
    config.plan_header_files recordings.
    """
    gpus = torch.cuda.device_count()
    nproc = nproc or max(gpus, 1)
    device = device or ("cuda:0" if gpus else "cpu")
    figures = tuple(stage_figures(s, config, noise_bank) for s in stages)
    paths = list(dict.fromkeys(p for s in stages for p in s.table["path"].astype(str)))
    timed = paths[: config.plan_header_files]
    header_ms = measure_header_ms(timed)
    n_classes = max((len(s.classes) for s in stages), default=1)
    rate = measure_device(config, n_classes, device, config.plan_warmup_steps)
    cores = os.cpu_count() or 1
    workers = config.num_workers * nproc
    name = rate.name if rate else str(device)
    return TrainingPlan(
        stages=figures,
        batch_size=config.batch_size,
        processes=nproc,
        loader_cores=min(workers, cores) if workers else nproc,
        overlapped=config.num_workers > 0,
        train_steps_per_s=rate and rate.train_steps_per_s,
        valid_clips_per_s=rate and rate.valid_clips_per_s,
        session_hours=session_hours,
        export_minutes=export_minutes,
        device_name=f"{nproc} x {name}" if nproc > 1 else name,
        header_ms_per_file=header_ms,
        header_files_timed=len(timed),
        notes=(
            f"loader measured for {config.plan_loader_seconds:g} s per stage on one core "
            f"(crop decoding + augmentations, no cache); device from "
            f"{config.plan_warmup_steps} uncounted steps on random clips",
        ),
    )
