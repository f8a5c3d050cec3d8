"""Decoded-audio cache, clip dataset and loader: hits without decoding, invalidation, targets,
crops that are random yet reproducible, and bad files that never stop an epoch."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lib.dataset as dataset_module
from lib.audio import load_audio, write_audio
from lib.config import Config
from lib.dataset import AudioCache, ClipDataset, EpochSampler, make_loader, make_targets, set_epoch
from lib.sources import class_list, read_birdclef2023
from workbench.synthetic import SyntheticSpec, make_competition

SR = 32000
CONFIG = Config().replace(batch_size=4, num_workers=0, seed=42)
SPEC = SyntheticSpec(
    n_species=3,
    recordings_per_species=(4, 5),
    recording_seconds=(3.0, 9.0),
    n_soundscapes=1,
    soundscape_seconds=5.0,
    with_pretrain_sources=False,
)


@pytest.fixture(scope="module")
def comp(tmp_path_factory) -> Path:
    return make_competition(tmp_path_factory.mktemp("synthetic"), SPEC)


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """Paths decoded through lib.dataset.load_audio, in order."""
    calls: list[str] = []

    def counting(path, sample_rate=32000):
        calls.append(str(path))
        return load_audio(path, sample_rate)

    monkeypatch.setattr(dataset_module, "load_audio", counting)
    return calls


def noise_file(path: Path, seconds: float, seed: int = 0) -> Path:
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * SR)).astype(np.float32)
    write_audio(path, wave, SR)
    return path


def tiny_table(tmp_path: Path) -> pd.DataFrame:
    paths = [noise_file(tmp_path / f"r{k}.wav", s, k) for k, s in enumerate((8.0, 2.0, 6.0))]
    return pd.DataFrame({
        "path": [str(p) for p in paths],
        "primary_label": ["aaa", "bbb", "zzz"],  # zzz is not a class: zero target
        "secondary_labels": [["bbb"], [], ["aaa", "unknown"]],
    })  # fmt: skip


def test_cache_hits_on_rerun_without_decoding(tmp_path, counted):
    path = noise_file(tmp_path / "a.wav", 3.0)
    first = AudioCache(tmp_path / "cache").get(path)
    assert counted == [str(path)]
    again = AudioCache(tmp_path / "cache").get(path)  # a new run, same folder
    assert counted == [str(path)]
    assert isinstance(again, np.memmap) and np.array_equal(first, again)
    assert not [p for p in (tmp_path / "cache").iterdir() if "tmp" in p.name]


def test_cache_is_invalidated_when_the_file_changes(tmp_path, counted):
    path = noise_file(tmp_path / "a.wav", 3.0, seed=0)
    cache = AudioCache(tmp_path / "cache")
    old = np.array(cache.get(path))
    noise_file(path, 4.0, seed=1)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    new = cache.get(path)
    assert len(counted) == 2 and len(new) == 4 * SR and len(old) == 3 * SR


@pytest.mark.parametrize(("dtype", "tolerance"), [("float16", 5e-4), ("float32", 0.0)])
def test_cache_round_trip(tmp_path, dtype, tolerance):
    path = noise_file(tmp_path / "a.wav", 2.0)
    cached = AudioCache(tmp_path / dtype, dtype=dtype).get(path)
    assert cached.dtype == np.dtype(dtype)
    np.testing.assert_allclose(cached.astype(np.float32), load_audio(path), atol=tolerance)
    assert AudioCache(tmp_path / "other", dtype="float32").entry(path) != AudioCache(
        tmp_path / "other", dtype="float16"
    ).entry(path)


def test_cache_keeps_only_the_first_seconds_when_capped(tmp_path):
    """cache_max_seconds bounds disk use: only the head of a long recording is stored."""
    path = noise_file(tmp_path / "long.wav", 4.0)
    capped = AudioCache(tmp_path / "cache", max_seconds=1.5)
    head = capped.get(path)
    assert len(head) == int(1.5 * SR)
    np.testing.assert_allclose(head, load_audio(path)[: len(head)], atol=5e-4)
    assert len(AudioCache(tmp_path / "cache").get(path)) == 4 * SR  # its own entry, uncapped


def test_cache_write_failure_leaves_no_file_and_serves_the_audio(tmp_path, monkeypatch):
    path = noise_file(tmp_path / "a.wav", 1.0)
    cache = AudioCache(tmp_path / "cache")

    def broken_save(file, array):
        Path(file).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(dataset_module.np, "save", broken_save)
    with pytest.warns(UserWarning, match="disk full.*another cache_dir"):
        wave = cache.get(path)
    np.testing.assert_allclose(wave.astype(np.float32), load_audio(path), atol=5e-4)
    assert list((tmp_path / "cache").iterdir()) == []


def test_warm_decodes_missing_in_parallel_and_reports_bad_files(tmp_path, counted):
    good = [noise_file(tmp_path / f"{k}.wav", 1.0, k) for k in range(4)]
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"not audio")
    cache = AudioCache(tmp_path / "cache")
    cache.get(good[0])
    with pytest.warns(UserWarning, match="1 of 4 files could not be decoded"):
        failed = cache.warm([*good, bad], num_workers=2)
    assert failed == [str(bad)]
    assert sorted(counted) == sorted(str(p) for p in [*good, bad])
    assert cache.warm(good) == []  # all cached now: nothing decoded
    assert len(counted) == 5


def test_targets_primary_secondary_and_unknown(tmp_path):
    table = tiny_table(tmp_path)
    classes = ["aaa", "bbb"]
    plain = make_targets(table, classes, CONFIG)
    assert plain.tolist() == [[1, 0], [0, 1], [0, 0]]
    weighted = make_targets(table, classes, CONFIG.replace(use_secondary_labels=True))
    assert weighted.tolist() == [[1, 0.5], [0, 1], [0.5, 0]]
    as_read_from_csv = table.assign(secondary_labels=table["secondary_labels"].map(str))
    again = make_targets(as_read_from_csv, classes, CONFIG.replace(use_secondary_labels=True))
    assert again.tolist() == weighted.tolist()


def test_items_have_clip_shapes_and_pad_short_recordings(tmp_path):
    table = tiny_table(tmp_path)
    data = ClipDataset(table, ["aaa", "bbb"], CONFIG, AudioCache(tmp_path / "c"), train=True)
    for index in range(len(data)):
        wave, target = data[index]
        assert wave.shape == (CONFIG.clip_samples,) and wave.dtype == torch.float32
        assert target.shape == (2,) and target.dtype == torch.float32
    short, _ = data[1]  # 2 s recording: zero-padded after its samples
    assert short[: 2 * SR].abs().sum() > 0 and not short[2 * SR :].any()


def test_eval_clip_is_the_first_seconds(tmp_path):
    table = tiny_table(tmp_path)
    data = ClipDataset(table, ["aaa"], CONFIG, AudioCache(tmp_path / "c"), train=False)
    wave, _ = data[0]
    expected = load_audio(table.path[0])[: CONFIG.clip_samples].astype(np.float16)
    np.testing.assert_array_equal(wave.numpy(), expected.astype(np.float32))
    assert torch.equal(data[0][0], wave)


def test_train_crops_are_random_per_epoch_and_reproducible(tmp_path):
    table = tiny_table(tmp_path)
    cache = AudioCache(tmp_path / "c")
    data = ClipDataset(table, ["aaa"], CONFIG, cache, train=True)
    crops = []
    for epoch in range(4):
        data.set_epoch(epoch)
        crops.append(data[0][0])
    assert len({tuple(c[:50].tolist()) for c in crops}) == 4
    same = ClipDataset(table, ["aaa"], CONFIG, cache, train=True)
    same.set_epoch(2)
    assert torch.equal(same[0][0], crops[2])
    other_seed = ClipDataset(table, ["aaa"], CONFIG.replace(seed=1), cache, train=True)
    other_seed.set_epoch(2)
    assert not torch.equal(other_seed[0][0], crops[2])


def test_augment_runs_only_in_training(tmp_path):
    table = tiny_table(tmp_path)
    seen = []

    def flip(wave, rng):
        seen.append(rng.random())
        return -wave

    cache = AudioCache(tmp_path / "c")
    train = ClipDataset(table, ["aaa"], CONFIG, cache, train=True, augment=flip)
    plain = ClipDataset(table, ["aaa"], CONFIG, cache, train=True)
    assert torch.equal(train[0][0], -plain[0][0]) and len(seen) == 1
    ClipDataset(table, ["aaa"], CONFIG, cache, train=False, augment=flip)[0]
    assert len(seen) == 1


def test_bad_file_gives_silent_clip_and_one_warning(tmp_path):
    table = tiny_table(tmp_path)
    Path(table.path[0]).write_bytes(b"garbage")
    Path(table.path[2]).unlink()
    for cache in (AudioCache(tmp_path / "c"), None):
        data = ClipDataset(table, ["aaa", "zzz"], CONFIG, cache, train=True)
        with pytest.warns(UserWarning, match=r"r0\.wav.*silent clip"):
            wave, target = data[0]
        assert not wave.any() and target.tolist() == [1.0, 0.0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data[0]  # warned once per file only
        with pytest.warns(UserWarning, match=r"r2\.wav"):
            assert not data[2][0].any()


def test_loader_is_reproducible_whatever_the_worker_count(comp, tmp_path):
    table = read_birdclef2023(comp)
    classes = class_list(table)
    cache = AudioCache(tmp_path / "cache")
    assert cache.warm(table.path) == []
    batches = {}
    for workers in (0, 2):
        config = CONFIG.replace(num_workers=workers)
        loader = make_loader(ClipDataset(table, classes, config, cache), config, shuffle=True)
        set_epoch(loader, 1)
        batches[workers] = list(loader)
    assert len(batches[0]) == -(-len(table) // CONFIG.batch_size)
    for (w0, t0), (w2, t2) in zip(batches[0], batches[2], strict=True):
        assert w0.shape[1:] == (CONFIG.clip_samples,) and t0.shape[1:] == (len(classes),)
        assert torch.equal(w0, w2) and torch.equal(t0, t2)
        assert torch.equal(t0.sum(dim=1), torch.ones(len(t0)))  # one primary per clip


def test_persistent_workers_see_the_new_epoch(comp, tmp_path):
    table = read_birdclef2023(comp).iloc[:8]
    config = CONFIG.replace(num_workers=2)
    data = ClipDataset(table, class_list(table), config, AudioCache(tmp_path / "cache"))
    loader = make_loader(data, config, shuffle=False)  # same order: only crops can change
    assert loader.persistent_workers
    epochs = []
    for epoch in (0, 1):
        set_epoch(loader, epoch)
        epochs.append(torch.cat([w for w, _ in loader]))
    assert not torch.equal(epochs[0], epochs[1])
    data.set_epoch(1)
    here = torch.stack([data[i][0] for i in range(len(data))])
    assert torch.equal(epochs[1], here)  # the workers cropped as epoch 1 does


def test_epoch_sampler_is_a_permutation_per_epoch():
    sampler = EpochSampler(50, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and first == list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(EpochSampler(50, seed=3)) == first
