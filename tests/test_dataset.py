"""Decoded-audio cache, clip dataset and loader: crops decoded from the file, reproducible per
(seed, epoch, index) and covering the whole recording; the cache's hits, invalidation and byte
budget; targets; and bad files (0-byte, truncated, not audio, silent) that never stop an epoch."""

from __future__ import annotations

import dataclasses
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
from lib.dataset import (
    AudioCache,
    ClipDataset,
    EpochSampler,
    SkipLog,
    make_cache,
    make_loader,
    make_targets,
    set_epoch,
)
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

    def counting(path, sample_rate=32000, offset=None, duration=None):
        if duration is None:  # whole-file decodes only; crops are counted by `crops`
            calls.append(str(path))
        return load_audio(path, sample_rate, offset=offset, duration=duration)

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


def bad_files(tmp_path: Path) -> dict[str, Path]:
    """One file of each bad kind, and one good file."""
    good = noise_file(tmp_path / "good.ogg", 3.0)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.ogg"  # cut inside its headers
    truncated.write_bytes(good.read_bytes()[:1500])
    text = tmp_path / "text.ogg"
    text.write_text("this is a README renamed to .ogg\n" * 20)
    silent = tmp_path / "silent.ogg"
    write_audio(silent, np.zeros(3 * SR, dtype=np.float32), SR)
    return {"good": good, "empty": empty, "truncated": truncated, "text": text, "silent": silent}


def test_bad_files_give_silent_clips_are_listed_and_the_epoch_goes_on(tmp_path):
    files = bad_files(tmp_path)
    table = pd.DataFrame({"path": [str(p) for p in files.values()], "primary_label": "aaa",
                          "source": "birdclef-2023"})  # fmt: skip
    log = SkipLog(tmp_path / "run" / "skipped_files.csv")
    for cache in (None, AudioCache(tmp_path / "c")):
        data = ClipDataset(table, ["aaa"], CONFIG, cache, train=True, skip_log=log)
        with pytest.warns(UserWarning) as caught:
            items = [data[k] for k in range(len(data))]
        assert items[0][0].abs().max() > 0.1 and items[0][1].tolist() == [1.0]
        for wave, target in items[1:]:  # skipped: silence that says "no species"
            assert not wave.any() and target.tolist() == [0.0]
        text = " ".join(str(w.message) for w in caught)
        assert "more recordings skipped" in text and "skipped_files.csv" in text
        assert len(caught) == 4  # three files named, then one line pointing at the list
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = [data[k] for k in range(len(data))]  # listed already: no new warning
        assert all(torch.equal(a[0], b[0]) for a, b in zip(items, again, strict=True))
    listed = log.read()
    assert sorted(listed["path"]) == sorted(str(files[k]) for k in files if k != "good")
    assert set(listed["source"]) == {"birdclef-2023"}
    reasons = dict(zip(listed["path"], listed["reason"], strict=True))
    assert reasons[str(files["silent"])].startswith("silent")
    assert all(reasons[str(files[k])].startswith("unreadable") for k in ("empty", "text"))


def test_validation_keeps_the_target_of_a_skipped_file(tmp_path):
    files = bad_files(tmp_path)
    table = pd.DataFrame({"path": [str(files["text"])], "primary_label": ["aaa"]})
    with pytest.warns(UserWarning, match=r"text\.ogg: unreadable"):
        wave, target = ClipDataset(table, ["aaa"], CONFIG, None, train=False)[0]
    assert not wave.any() and target.tolist() == [1.0]  # scored truth stays what it was


def test_a_silent_stretch_of_a_loud_file_is_not_skipped(tmp_path):
    wave = np.zeros(12 * SR, dtype=np.float32)
    wave[8 * SR :] = np.random.default_rng(0).uniform(-0.5, 0.5, 4 * SR)
    path = tmp_path / "late.wav"
    write_audio(path, wave, SR)
    table = pd.DataFrame({"path": [str(path)], "primary_label": ["aaa"]})
    log = SkipLog(tmp_path / "skipped.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip, target = ClipDataset(table, ["aaa"], CONFIG, None, False, skip_log=log)[0]
    assert not clip.any() and target.tolist() == [1.0] and log.read().empty


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


# --- crops decoded from the file ---------------------------------------------------------------


def long_table(tmp_path: Path, seconds: float = 20.0) -> pd.DataFrame:
    path = noise_file(tmp_path / "long.wav", seconds, seed=7)
    return pd.DataFrame({"path": [str(path)], "primary_label": ["aaa"], "seconds": [seconds]})


def test_crops_are_slices_of_the_file_and_decode_only_the_crop(tmp_path, counted):
    table = long_table(tmp_path)
    whole = load_audio(table.path[0])
    data = ClipDataset(table, ["aaa"], CONFIG, None, train=True)
    for epoch in range(3):
        data.set_epoch(epoch)
        start = data.crop_start(0, data.rng(0))
        wave, _ = data[0]
        np.testing.assert_array_equal(wave.numpy(), whole[start : start + CONFIG.clip_samples])
    assert counted == []  # no whole-file decode: only the crops were read


def test_crops_cover_the_whole_recording_over_epochs(tmp_path):
    """60 epochs of crops of a 20-s file cover all of it but its outer half seconds."""
    table = long_table(tmp_path)
    data = ClipDataset(table, ["aaa"], CONFIG, None, train=True)
    n, size = 20 * SR, CONFIG.clip_samples
    covered = np.zeros(n, dtype=bool)
    starts = []
    for epoch in range(60):
        data.set_epoch(epoch)
        start = data.crop_start(0, data.rng(0))
        assert 0 <= start <= n - size
        covered[start : start + size] = True
        starts.append(start)
    # Uniform starts reach an end sample only at start 0 or n - size exactly: the ends
    # are covered as the draws approach them, everything between is covered.
    assert covered[SR // 2 : n - SR // 2].all(), (min(starts), max(starts))


def test_crop_positions_depend_only_on_seed_epoch_and_index(tmp_path):
    """What a resumed run relies on: a fresh dataset (a new session) crops epoch 5 as the one
    that ran epochs 0-4 did; durations from the table or from the header give the same crops."""
    table = long_table(tmp_path)
    ran = ClipDataset(table, ["aaa"], CONFIG, None, train=True)
    for epoch in range(6):
        ran.set_epoch(epoch)
        ran[0]
    fresh = ClipDataset(table.drop(columns="seconds"), ["aaa"], CONFIG, None, train=True)
    fresh.set_epoch(5)
    assert torch.equal(fresh[0][0], ran[0][0])


def test_cached_and_decoded_crops_agree(tmp_path):
    table = long_table(tmp_path)
    direct = ClipDataset(table, ["aaa"], CONFIG, None, train=True)
    cached = ClipDataset(table, ["aaa"], CONFIG, AudioCache(tmp_path / "c"), train=True)
    for epoch in (0, 1):
        direct.set_epoch(epoch)
        cached.set_epoch(epoch)
        np.testing.assert_allclose(cached[0][0], direct[0][0], atol=5e-4)  # float16 cache


# --- the cache's byte budget -------------------------------------------------------------------


def one_second_files(tmp_path: Path, count: int) -> list[Path]:
    return [noise_file(tmp_path / f"s{k}.wav", 1.0, k) for k in range(count)]


def cache_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.npy"))


def test_cache_writes_stop_at_the_budget_with_one_warning_with_numbers(tmp_path):
    files = one_second_files(tmp_path, 6)
    entry = 1 * SR * 2 + 128  # one second, float16, plus the .npy header
    cache = AudioCache(tmp_path / "c", budget_bytes=3.5 * entry)
    with pytest.warns(UserWarning) as caught:
        results = [cache.get(p, seconds=1.0) for p in files]
    assert [r is not None for r in results] == [True, True, True, False, False, False]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "budget 224.4 KB reached" in message and "192.4 KB used by 3 cached files" in message
    assert "cache_budget_gb" in message
    assert cache_bytes(tmp_path / "c") == 3 * entry <= 3.5 * entry
    assert (cache.files_cached, cache.files_refused, cache.full) == (3, 3, True)
    again = AudioCache(tmp_path / "c", budget_bytes=3.5 * entry)  # next session: counts them
    assert again.used_bytes == 3 * entry and again.get(files[0], 1.0) is not None


def test_cache_budget_without_durations_decodes_but_never_writes_past_it(tmp_path):
    files = one_second_files(tmp_path, 3)
    cache = AudioCache(tmp_path / "c", budget_bytes=100_000)
    with pytest.warns(UserWarning, match="1 cached files"):
        waves = [cache.get(p) for p in files]
    assert all(w is not None and len(w) == SR for w in waves)  # still served, decoded
    assert cache_bytes(tmp_path / "c") <= 100_000 and cache.files_cached == 1


def test_cache_keeps_the_free_disk_margin(tmp_path, monkeypatch):
    files = one_second_files(tmp_path, 2)
    cache = AudioCache(tmp_path / "c", min_free_bytes=5e9)
    usage = type("Usage", (), {"free": int(5e9) + 70_000})
    monkeypatch.setattr(dataset_module.shutil, "disk_usage", lambda _: usage)
    with pytest.warns(UserWarning, match=r"disk has 5\.00 GB free, margin 5\.00 GB"):
        assert cache.get(files[0], 1.0) is not None  # 64 KB fit in the 70 KB above the margin
        usage.free -= 64_128
        assert cache.get(files[1], 1.0) is None


def test_cache_budget_is_shared_by_the_loader_workers(tmp_path):
    files = one_second_files(tmp_path, 8)
    entry = 1 * SR * 2 + 128
    table = pd.DataFrame({"path": [str(p) for p in files], "primary_label": "aaa", "seconds": 1.0})
    cache = AudioCache(tmp_path / "c", budget_bytes=4 * entry)
    config = CONFIG.replace(num_workers=2, batch_size=1)
    loader = make_loader(ClipDataset(table, ["aaa"], config, cache), config, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning is raised in a worker
        assert len(list(loader)) == 8
    assert cache_bytes(tmp_path / "c") == 4 * entry and cache.files_cached == 4


def test_cache_is_off_by_default_and_made_from_the_config(tmp_path):
    assert make_cache(Config(), tmp_path / "c") is None
    cache = make_cache(Config(cache_budget_gb=2.0, cache_min_free_gb=1.0), tmp_path / "c", 0.5)
    assert cache.budget_bytes == 2e9 and cache.min_free_bytes == 1e9
    assert cache.allowance == 1e9  # one of two DDP ranks: half of what is left


# --- files that lie: a cut body behind an intact header, silence ---------------------------------


def cut_file(path: Path, seconds: float, keep: float, rate: int = SR) -> Path:
    """A real recording of `seconds` whose bytes are cut after the share `keep` (mid-page for
    ogg, mid-frame for mp3): an interrupted download whose header may still promise it all."""
    wave = np.random.default_rng(1).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
    write_audio(path, wave, rate)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) + 333])  # + 333: not on a page boundary
    return path


def findings_for(tmp_path: Path):
    from lib.audio_index import LoaderFindings

    return LoaderFindings(tmp_path / "run" / "loader_findings.csv")


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_a_cut_file_trains_only_on_audio_that_is_there(tmp_path, suffix):
    """mp3: the Xing header still promises 60 s, the data end near 24 s; ogg: libsndfile takes
    the length from the last whole page, so the header already tells the truth. Either way no
    crop holds the zeros past the audio's end, and the real length is learned and kept."""
    from lib.audio import audio_info
    from lib.audio_index import DECODED_SECONDS

    path = cut_file(tmp_path / f"cut{suffix}", 60.0, 0.4)
    real = len(load_audio(path)) / SR  # what really decodes
    header = audio_info(path).seconds
    assert 22.0 < real < 26.0
    assert header == (60.0 if suffix == ".mp3" else real)
    table = pd.DataFrame({"path": [str(path)], "primary_label": ["aaa"], "seconds": [header]})
    findings = findings_for(tmp_path)
    learning = ClipDataset(table, ["aaa"], CONFIG, None, train=True, findings=findings)
    clips = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(20):
            learning.set_epoch(epoch)
            wave, target = learning[0]
            assert np.abs(wave[-SR // 10 :].numpy()).max() > 0.1, epoch  # audio to the end
            assert int((wave == 0).sum()) < 20 and target.tolist() == [1.0]
            clips.append(wave)
    known = findings.read()
    if suffix == ".mp3":
        assert known[(str(path), DECODED_SECONDS)] == pytest.approx(real, abs=1e-3)
        assert sum("the audio ends at" in str(w.message) for w in caught) == 1
        # at least one of 20 crops over 60 s was drawn past 24 s and drawn again inside
        assert learning.decoded_seconds(0) == pytest.approx(real, abs=1e-3)
    else:
        assert (str(path), DECODED_SECONDS) not in known
    knowing = ClipDataset(table, ["aaa"], CONFIG, None, train=True, findings=findings)
    for epoch, wave in enumerate(clips):  # a resumed session draws the very same crops
        knowing.set_epoch(epoch)
        assert torch.equal(knowing[0][0], wave)


def test_a_cut_file_with_almost_no_audio_is_listed_and_skipped(tmp_path):
    path = tmp_path / "stub.mp3"  # the header and a sliver: 0.0015 s of audio decode
    path.write_bytes(cut_file(tmp_path / "src.mp3", 60.0, 1.0).read_bytes()[:1500])
    table = pd.DataFrame({"path": [str(path)], "primary_label": ["aaa"], "seconds": [60.0],
                          "source": ["birdsong-recognition"]})  # fmt: skip
    log = SkipLog(tmp_path / "run" / "skipped_files.csv")
    data = ClipDataset(table, ["aaa"], CONFIG, None, True, skip_log=log,
                       findings=findings_for(tmp_path))  # fmt: skip
    with pytest.warns(UserWarning, match="only 0.00 s of audio decode") as caught:
        wave, target = data[0]
    assert len(caught) == 1
    assert not wave.any() and target.tolist() == [0.0]
    listed = log.read()
    assert listed["path"].tolist() == [str(path)]
    assert listed["reason"][0].startswith("cut: the header says 60.0 s")


def test_what_a_loader_worker_learns_reaches_the_run_and_the_other_workers(tmp_path):
    path = cut_file(tmp_path / "cut.mp3", 60.0, 0.4)
    real = len(load_audio(path)) / SR
    table = pd.DataFrame({"path": [str(path)] * 8, "primary_label": "aaa", "seconds": 60.0})
    config = CONFIG.replace(num_workers=2, batch_size=2)
    findings = findings_for(tmp_path)
    data = ClipDataset(table, ["aaa"], config, None, True, findings=findings)
    loader = make_loader(data, config, shuffle=True)
    for epoch in range(3):
        set_epoch(loader, epoch)
        for waves, _ in loader:
            assert all(np.abs(w[-SR // 10 :].numpy()).max() > 0.1 for w in waves)
    assert all(data.decoded_seconds(k) == pytest.approx(real, abs=1e-3) for k in range(8))
    assert len(findings.read()) == 1


def test_a_silent_file_costs_a_few_crops_and_is_judged_once_per_run(tmp_path, monkeypatch, counted):
    path = tmp_path / "silent.wav"  # 10 minutes of digital silence
    write_audio(path, np.zeros(600 * SR, dtype=np.float32), SR)
    decoded: list[int] = []

    def counting(*args, **kwargs):
        crop = dataset_module.load_crop.__wrapped__(*args, **kwargs)
        decoded.append(len(crop.wave))
        return crop

    counting.__wrapped__ = dataset_module.load_crop
    monkeypatch.setattr(dataset_module, "load_crop", counting)
    table = pd.DataFrame({"path": [str(path)], "primary_label": "aaa", "seconds": 600.0})
    findings, log = findings_for(tmp_path), SkipLog(tmp_path / "run" / "skipped_files.csv")
    data = ClipDataset(table, ["aaa"], CONFIG, None, True, skip_log=log, findings=findings)
    with pytest.warns(UserWarning, match="silent"):
        assert data.clip(0, data.rng(0)) is None
    # the crop and SILENT_PROBE_CROPS probes: 5 crops, not 600 s (120 crops) of decoding
    assert sum(decoded) <= (1 + dataset_module.SILENT_PROBE_CROPS) * CONFIG.clip_samples
    assert counted == []  # and no whole-file decode
    assert log.read()["reason"][0].startswith("silent")
    decoded.clear()
    again = ClipDataset(table, ["aaa"], CONFIG, None, True, skip_log=log, findings=findings)
    assert again.clip(0, again.rng(0)) is None and decoded == []  # the next fold: no decode


def test_silence_is_judged_once_whatever_the_worker_count(tmp_path):
    quiet = tmp_path / "quiet.wav"
    write_audio(quiet, np.zeros(30 * SR, dtype=np.float32), SR)
    late = tmp_path / "late.wav"  # silent crops, but sound at the end: not a silent file
    wave = np.zeros(30 * SR, dtype=np.float32)
    wave[25 * SR :] = 0.3
    write_audio(late, wave, SR)
    table = pd.DataFrame({"path": [str(quiet)] * 4 + [str(late)] * 4, "primary_label": "aaa"})
    config = CONFIG.replace(num_workers=2, batch_size=2)
    findings = findings_for(tmp_path)
    data = ClipDataset(table, ["aaa"], config, None, True, findings=findings)
    loader = make_loader(data, config, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(3):
            set_epoch(loader, epoch)
            list(loader)
    rows = pd.read_csv(findings.path)
    verdicts = rows[rows["finding"] == "silent"]
    assert sorted(verdicts["path"]) == sorted({str(quiet), str(late)})  # once each, not per
    # worker, row or epoch (the old check decoded the whole file in every worker that met it)
    known = findings.read()
    assert known[(str(quiet), "silent")] == 1.0 and known[(str(late), "silent")] == 0.0


def test_a_cut_file_served_from_the_decoded_cache_stays_inside_its_audio(tmp_path):
    path = cut_file(tmp_path / "cut.mp3", 60.0, 0.4)
    real = len(load_audio(path)) / SR
    table = pd.DataFrame({"path": [str(path)], "primary_label": ["aaa"], "seconds": [60.0]})
    data = ClipDataset(table, ["aaa"], CONFIG, AudioCache(tmp_path / "c"), True,
                       findings=findings_for(tmp_path))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(20):
            data.set_epoch(epoch)
            wave, target = data[0]
            assert np.abs(wave[-SR // 10 :].numpy()).max() > 0.1 and target.tolist() == [1.0]
    assert data.decoded_seconds(0) == pytest.approx(real, abs=1e-3)
    assert sum("the audio ends at" in str(w.message) for w in caught) == 1


def test_soundscape_segments_are_read_exactly_at_their_offset(tmp_path):
    """2026's labelled segments: the clip of a segment row is the file's samples from its
    offset, in training and validation, whatever the epoch; every label is a full target."""
    from lib.competitions import PROFILES
    from lib.sources import soundscape_segments
    from workbench.synthetic.years import YEAR_SPEC, make_year_competition

    prof = PROFILES["birdclef-2026"]
    comp = make_year_competition(tmp_path, prof, dataclasses.replace(YEAR_SPEC, n_soundscapes=1))
    segments = soundscape_segments(prof, comp)
    later = segments[segments["offset"] > 0].reset_index(drop=True)
    assert len(later) >= 2
    classes = sorted({label for row in later.itertuples() for label in
                      [row.primary_label, *row.secondary_labels]})  # fmt: skip
    config = CONFIG.replace(clip_seconds=5.0)
    for train, epoch in ((True, 0), (True, 3), (False, 0)):
        dataset = ClipDataset(later, classes, config, train=train)
        dataset.set_epoch(epoch)
        for index, row in later.iterrows():
            wave = load_audio(row["path"], SR)
            start = int(round(row["offset"] * SR))
            clip, _ = dataset[index]
            np.testing.assert_allclose(clip.numpy(), wave[start : start + config.clip_samples],
                                       atol=1e-6)  # fmt: skip
    targets = make_targets(later, classes, config)  # use_secondary_labels is off: still 1.0
    for row, labels in enumerate(later["primary_label"].map(lambda x: [x])
                                 + later["secondary_labels"]):  # fmt: skip
        assert {classes[k] for k in np.flatnonzero(targets[row] == 1.0)} == set(labels)
