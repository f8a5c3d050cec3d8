"""Measured figures for the plan on the synthetic competition: the loader's pace with crop
decoding and augmentations, the device's step rate from uncounted steps, and the plan built
from them for a pre-training and a fine-tuning stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_BACKBONE

from lib.augment import WaveAugment
from lib.config import Config
from lib.dataset import ClipDataset
from lib.run_dir import pretraining_table
from lib.sources import class_list, make_folds, read_birdclef2023, read_sources
from lib.throughput import StageData, make_training_plan, measure_device, measure_loader
from workbench.synthetic import SyntheticSpec, make_competition

CONFIG = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64, batch_size=4,
                num_workers=2, n_folds=3, plan_loader_seconds=0.5, plan_warmup_steps=4)  # fmt: skip
SPEC = SyntheticSpec(n_species=4, recordings_per_species=(6, 7), recording_seconds=(3.0, 20.0),
                     n_soundscapes=1, soundscape_seconds=5.0, minor_species=0)  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_competition(tmp_path_factory.mktemp("synthetic"), SPEC).parent


def test_loader_pace_is_measured_per_core_with_its_decode_share(root):
    table = read_birdclef2023(root / "birdclef-2023")
    dataset = ClipDataset(table, class_list(table), CONFIG, None, True, WaveAugment(CONFIG))
    rate = measure_loader(dataset, seconds=0.5)
    assert rate.clips >= 3 and rate.clips_per_s > 1.0
    assert 0.0 < rate.decode_share < 1.0
    assert rate.cached_clips_per_s > rate.clips_per_s  # a memmap read is cheaper than decoding
    assert dataset.epoch == 0


def test_device_rate_from_uncounted_steps_and_none_when_off():
    rate = measure_device(CONFIG, n_classes=5, device="cpu", steps=4)
    assert rate.train_steps_per_s > 0 and rate.valid_clips_per_s > 0
    assert rate.name.startswith("CPU")
    assert measure_device(CONFIG, 5, "cpu", steps=0) is None


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
    assert all(s.loader_clips_per_s_per_core > 0 for s in plan.stages)
    assert plan.loader_cores == min(2, __import__("os").cpu_count())
    assert plan.total_hours() > 0 and plan.sessions() == 1
    text = plan.text()
    assert "pre-train" in text and "fine-tune" in text and "session(s) of 11 h" in text
