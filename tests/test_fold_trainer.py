"""lib.fold_trainer without a data set: seeds, the optimiser's schedule, one training epoch on
in-memory batches, scoring, and the resume checkpoint (last.pt) round trip.

Training end to end (learning, resume equal to an uninterrupted run) is in
tests/test_train_folds.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TINY_BACKBONE

from lib.config import Config
from lib.distributed import DistInfo
from lib.fold_trainer import (
    Progress,
    build_trainer,
    derive_seed,
    restore_last,
    save_last,
    saved_best_score,
    score_clips,
    seed_everything,
    train_one_epoch,
)
from lib.model import save_checkpoint

TINY = Config(
    backbone=TINY_BACKBONE, pretrained=False, n_mels=64, clip_seconds=1.0, epochs=2, lr=1e-3
)
CLASSES = ["a", "b", "c"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainer(steps_per_epoch: int = 2, fold: int = 0):
    return build_trainer(TINY, CLASSES, fold, torch.device("cpu"), DistInfo(), steps_per_epoch)


def batches(count: int = 2, size: int = 4, seed: int = 0) -> list:
    """In-memory (waves (B, clip_samples), targets (B, classes)) batches: tones per class."""
    rng = np.random.default_rng(seed)
    t = np.arange(TINY.clip_samples) / TINY.sample_rate
    out = []
    for _ in range(count):
        labels = rng.integers(0, len(CLASSES), size)
        waves = np.stack([0.3 * np.sin(2 * np.pi * 800 * (k + 1) * t) for k in labels])
        waves += rng.normal(0, 0.01, waves.shape)
        targets = np.eye(len(CLASSES))[labels]
        out.append((torch.from_numpy(waves).float(), torch.from_numpy(targets).float()))
    return out


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(42, 0, 1, 0) == derive_seed(42, 0, 1, 0)
    seeds = {derive_seed(42, fold, epoch, 0) for fold in range(5) for epoch in range(20)}
    assert len(seeds) == 100 and all(0 <= s < 2**32 for s in seeds)


def test_schedule_is_a_per_step_cosine_from_lr_to_min_lr():
    t = trainer(steps_per_epoch=5)
    rates = []
    for _ in range(TINY.epochs * 5):
        rates.append(t.optimizer.param_groups[0]["lr"])
        t.optimizer.step()
        t.scheduler.step()
    assert rates[0] == pytest.approx(TINY.lr) and (np.diff(rates) < 0).all()
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(TINY.min_lr)
    with pytest.raises(ValueError, match="not supported"):
        build_trainer(TINY.replace(optimizer="sgd"), CLASSES, 0, torch.device("cpu"), DistInfo(), 1)


def test_one_epoch_trains_and_reports_a_finite_mean_loss():
    t = trainer()
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    loss = train_one_epoch(t, batches(), epoch=0)
    assert math.isfinite(loss) and loss > 0
    after = t.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert t.optimizer.param_groups[0]["lr"] < TINY.lr  # the schedule stepped per batch


def test_resume_checkpoint_round_trip(tmp_path):
    """last.pt restores the model, optimiser, schedule and progress into a fresh trainer."""
    t = trainer()
    train_one_epoch(t, batches(), epoch=0)
    progress = Progress(next_epoch=1, best_score=0.5, best_epoch=0, history=[{"epoch": 0}])
    save_last(tmp_path / "last.pt", t, progress)
    fresh = trainer()
    assert restore_last(tmp_path / "last.pt", fresh) == progress
    for key, value in t.model.state_dict().items():
        assert torch.equal(value, fresh.model.state_dict()[key]), key
    assert fresh.scheduler.state_dict() == t.scheduler.state_dict()
    assert fresh.optimizer.param_groups[0]["lr"] == t.optimizer.param_groups[0]["lr"]
    losses = []
    for one in (t, fresh):  # seeded as lib.train_folds seeds an epoch
        seed_everything(7)
        one.generator.manual_seed(7)
        losses.append(train_one_epoch(one, batches(seed=1), 1))
    assert losses[0] == losses[1]  # the same next epoch: the optimiser's moments came back too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_saved_best_score(tmp_path):
    assert saved_best_score(tmp_path / "best.pt") == -math.inf
    save_checkpoint(tmp_path / "best.pt", trainer().model, TINY, CLASSES, score=0.75)
    assert saved_best_score(tmp_path / "best.pt") == 0.75


def test_score_clips_is_padded_cmap_of_present_labels():
    truth = np.eye(3)[[0, 1, 2, 0]]
    perfect = score_clips(["r0", "r1", "r2", "r3"], truth, truth.astype(np.float32), CLASSES)
    flipped = score_clips(["r0", "r1", "r2", "r3"], truth, 1 - truth, CLASSES)
    assert perfect == pytest.approx(1.0) and flipped < perfect
