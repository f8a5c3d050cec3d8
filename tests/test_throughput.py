"""Measured figures for the plan: the loader's pace (on a clock the test drives, on a loader
that sleeps a known time, and on the synthetic competition), the device's step rate from
uncounted steps, and the plan built from those figures for a pre-training and a fine-tuning
stage."""

from __future__ import annotations

import math
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_BACKBONE

import lib.throughput as throughput
from lib.augment import WaveAugment
from lib.config import Config
from lib.dataset import ClipDataset
from lib.run_dir import pretraining_table
from lib.sources import class_list, make_folds, read_birdclef2023, read_sources
from lib.throughput import (
    DeviceRate,
    LoaderRate,
    StageData,
    make_training_plan,
    measure_device,
    measure_loader,
    memmap_crop_seconds,
)
from workbench.synthetic import SyntheticSpec, make_competition

CONFIG = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64, batch_size=4,
                num_workers=2, n_folds=3, plan_loader_seconds=0.5, plan_warmup_steps=4)  # fmt: skip
SPEC = SyntheticSpec(n_species=4, recordings_per_species=(6, 7), recording_seconds=(3.0, 20.0),
                     n_soundscapes=1, soundscape_seconds=5.0, minor_species=0)  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_competition(tmp_path_factory.mktemp("synthetic"), SPEC).parent


class FakeClock:
    """Virtual seconds that move only when the code under test 'works' (advance)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TimedLoader:
    """ClipDataset's surface as measure_loader uses it. Each clip costs `decode_s` (the very
    first one `first_s` more: imports, soxr set-up), every third clip is unreadable (None),
    each augmentation costs `augment_s`; on `clock` (a FakeClock) or, without one, real sleeps."""

    def __init__(self, decode_s, augment_s=0.0, first_s=0.0, clock=None, n=50):
        self.decode_s, self.augment_s, self.first_s, self.clock, self.n = (
            decode_s, augment_s, first_s, clock, n
        )  # fmt: skip
        self.config = CONFIG
        self.augment = self._augment if augment_s else None
        self.calls = 0

    def __len__(self):
        return self.n

    def rng(self, index):
        return np.random.default_rng(index)

    def _spend(self, seconds):
        if self.clock is None:
            time.sleep(seconds)
        else:
            self.clock.advance(seconds)

    def clip(self, index, rng):
        self._spend(self.decode_s + (self.first_s if self.calls == 0 else 0.0))
        self.calls += 1
        return None if index % 3 == 0 else np.ones(self.config.clip_samples, np.float32)

    def _augment(self, clip, rng):
        self._spend(self.augment_s)
        return clip


def test_loader_pace_on_a_known_clock_skips_the_first_calls():
    # 1/128 s decode + 1/256 s augment = 3/256 s a clip (exact in binary): 256/3 clips/s,
    # two thirds of it decoding; 0.375 s = 32 clips. The first call's extra second is not counted.
    clock = FakeClock()
    loader = TimedLoader(decode_s=1 / 128, augment_s=1 / 256, first_s=1.0, clock=clock)
    rate = measure_loader(loader, seconds=0.375, clock=clock)
    assert rate.clips == 32 and loader.calls == 34  # two uncounted warm-up calls
    assert rate.clips_per_s == pytest.approx(256 / 3, rel=1e-12)
    assert rate.decode_share == pytest.approx(2 / 3, rel=1e-12)
    # the cache estimate: the augmentation's cost plus a memmap read instead of the decode
    cached_per_clip = 1 / rate.cached_clips_per_s
    assert cached_per_clip == pytest.approx(1 / 256 + memmap_crop_seconds(CONFIG), abs=1e-3)
    assert rate.cached_clips_per_s > 1.5 * rate.clips_per_s


def test_loader_pace_of_a_loader_sleeping_10_ms_per_clip_is_100_clips_per_s():
    rate = measure_loader(TimedLoader(decode_s=0.010), seconds=0.3)
    assert 60.0 < rate.clips_per_s <= 100.0, rate  # a sleep never returns early
    assert rate.clips / rate.clips_per_s >= 0.3  # it ran for the time asked
    assert rate.decode_share > 0.95  # no augmentation: all of it is the read


def test_loader_pace_on_real_data_leaves_the_dataset_as_it_was(root):
    table = read_birdclef2023(root / "birdclef-2023")
    dataset = ClipDataset(table, class_list(table), CONFIG, None, True, WaveAugment(CONFIG))
    before = [dataset.clip(i, dataset.rng(i)) for i in range(3)]
    rate = measure_loader(dataset, seconds=0.5)
    assert rate.clips >= 3 and rate.clips / rate.clips_per_s >= 0.5
    assert 0.0 < rate.decode_share < 1.0  # crop decoding and augmentation both cost time
    assert rate.cached_clips_per_s > rate.clips_per_s  # a memmap read is cheaper than decoding
    assert dataset.epoch == 0  # the run's crops are the same with or without the plan
    for i, clip in enumerate(before):
        np.testing.assert_array_equal(dataset.clip(i, dataset.rng(i)), clip)


def test_device_rate_counts_only_the_timed_steps(monkeypatch):
    """A model whose forward takes 1/4 s in training and 1/16 s in evaluation, on a virtual
    clock: 8 steps, the first 2 (a quarter) uncounted, must give exactly 4 steps/s; 2 timed
    validation batches of 4 clips, 64 clips/s."""
    clock, real_build = FakeClock(), throughput.build_model

    def timed_model(config, n_classes, pretrained=None):
        model = real_build(config, n_classes, pretrained)
        model.register_forward_hook(lambda m, *_: clock.advance(0.25 if m.training else 0.0625))
        return model

    monkeypatch.setattr(throughput, "build_model", timed_model)
    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=clock))
    rate = measure_device(CONFIG, n_classes=5, device="cpu", steps=8)
    assert rate == DeviceRate(4.0, 64.0, "CPU (1 torch threads)")


def test_device_rate_on_the_cpu_and_none_when_off():
    rate = measure_device(CONFIG, n_classes=5, device="cpu", steps=8)
    assert rate.name == "CPU (1 torch threads)"  # conftest runs torch on one thread
    # forward only is several times cheaper than forward + backward + AdamW
    assert rate.valid_clips_per_s > rate.train_steps_per_s * CONFIG.batch_size, rate
    assert measure_device(CONFIG, 5, "cpu", steps=0) is None


@pytest.fixture
def known_rates(monkeypatch):
    """The plan's measurements replaced by known figures: loader 50 clips/s per core (cache
    80), device 10 steps/s and 200 validation clips/s per process, 3 CPU cores."""
    seen = []

    def loader(dataset, seconds):
        seen.append((len(dataset), dataset.train, seconds))
        return LoaderRate(50.0, 0.5, 80.0, 10)

    monkeypatch.setattr(throughput, "measure_loader", loader)
    monkeypatch.setattr(throughput, "measure_device", lambda *a: DeviceRate(10.0, 200.0, "GPU"))
    monkeypatch.setattr(throughput.os, "cpu_count", lambda: 3)
    return seen


def fine_tune_stage(root: Path, copies: int = 1) -> StageData:
    comp = make_folds(read_birdclef2023(root / "birdclef-2023"), 3, 5, CONFIG.seed)
    comp = pd.concat([comp] * copies, ignore_index=True)
    return StageData("fine-tune", comp, class_list(comp), (0, 1, 2), 3)


def test_plan_from_known_rates_projects_hours_by_hand(root, known_rates):
    stage = fine_tune_stage(root)
    plan = make_training_plan(CONFIG, [stage], nproc=2, device="cpu", session_hours=11.0)
    assert known_rates == [(len(stage.table), True, CONFIG.plan_loader_seconds)]
    # 2 processes x 2 workers on 3 cores: loader 150 clips/s; device 10 x 4 x 2 = 80 clips/s
    assert plan.loader_cores == 3 and plan.device_name == "2 x GPU"
    (figures,) = plan.stages
    valid = round(len(stage.table) / 3)  # mean fold size
    assert (figures.train_clips, figures.valid_clips) == (len(stage.table) - valid, valid)
    epoch_s = figures.train_clips / 80 + valid / 150  # validation: min(loader 150, device 400)
    header_s = figures.recordings * plan.header_ms_per_file / 1000  # the timed header pass
    assert plan.header_files_timed == min(len(stage.table), CONFIG.plan_header_files)
    hours = (header_s + 3 * 3 * epoch_s) / 3600
    assert plan.stage_hours(figures) == pytest.approx(hours, rel=1e-12)
    assert plan.total_hours() == pytest.approx(hours + 10 / 60, rel=1e-12)
    doubled = make_training_plan(CONFIG, [fine_tune_stage(root, 2)], nproc=2, device="cpu")

    def training_seconds(p, stage):  # the epochs alone (the header pass is timed per plan)
        return p.stage_hours(stage) * 3600 - p.header_seconds(stage)

    ratio = training_seconds(doubled, doubled.stages[0]) / training_seconds(plan, figures)
    assert ratio == pytest.approx(2.0, abs=0.02)  # twice the clips: twice the hours


def test_plan_of_both_stages_on_the_synthetic_competition(root):
    comp = make_folds(read_birdclef2023(root / "birdclef-2023"), 3, 5, CONFIG.seed)
    sources = read_sources({name: root / name for name in ("birdclef-2021", "birdclef-2022")})
    pre = pretraining_table(sources, comp, valid_fold=0)
    stages = [
        StageData("pre-train", pre, class_list(pre), (0,), 2),
        StageData("fine-tune", comp, class_list(comp), (0, 1, 2), 3),
    ]
    plan = make_training_plan(CONFIG, stages, nproc=1, device="cpu", session_hours=11.0)
    print(plan.text())
    pre_fig, fine_fig = plan.stages
    assert pre_fig.valid_clips == int((comp["fold"] == 0).sum())
    assert pre_fig.train_clips == len(pre) - pre_fig.valid_clips and pre_fig.folds == 1
    assert fine_fig.train_clips + fine_fig.valid_clips == len(comp) and fine_fig.folds == 3
    assert plan.loader_cores == min(2, __import__("os").cpu_count())
    # every figure measured: an unmeasured rate makes the hours NaN and the sessions unknown
    assert math.isfinite(plan.total_hours()) and plan.sessions() == 1
    text = plan.text()
    assert "pre-train" in text and "fine-tune" in text and "session(s) of 11 h" in text
    assert "CPU (1 torch threads)" in text and "?" not in text
