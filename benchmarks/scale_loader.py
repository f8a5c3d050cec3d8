"""The loader part of bench_scale.py: augmented clips/s per core through the real training data
path (lib.dataset.ClipDataset with train=True, crops drawn from the header index, and
lib.augment.WaveAugment with a background-noise bank from lib.noise), timed by the training
plan's own measurement, lib.throughput.measure_loader, on this process's CPU time.

Three ways to get a clip: crop decoding (what training does), whole-file decoding then a crop
(the old way, a subclass below: lib.dataset no longer offers it) and the decoded cache
(lib.dataset.AudioCache, float16, warmed first). Augmentations: all four waveform ones on every
clip (p = 1: pitch shift, background noise, Gaussian and uniform noise: the worst case) and, for
crop decoding, the recipe's probabilities (Config defaults: what training pays on average).
Mixup and SpecAugment run on the batch in the training step (on the GPU), not in the loader.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.audio import crop_or_pad, load_audio
from lib.audio_cache import AudioCache
from lib.audio_index import load_or_build_index, read_durations
from lib.augment import (
    WaveAugment,
    add_background,
    add_gaussian_noise,
    add_uniform_noise,
    pitch_shift,
)
from lib.config import Config
from lib.dataset import ClipDataset, make_loader
from lib.noise import NoiseBank, noise_bank_from_files

CLASSES = ["sp0"]
MODES = (  # (label, dataset class name, augmentation probabilities)
    ("crop decoding", "crop", "p=1"),
    ("crop decoding", "crop", "recipe"),
    ("whole-file decode + crop", "whole", "p=1"),
    ("decoded cache (warm)", "cache", "p=1"),
)
Figure = tuple[str, str, str]  # (what, codec, figure): a row of bench_scale's table


class WholeFileDataset(ClipDataset):
    """The old way, kept here only to compare: decode the whole recording, then crop (what
    lib.dataset did before crop decoding)."""

    def read_crop(self, index: int, start: int) -> tuple[np.ndarray, float | None]:
        wave = load_audio(str(self.paths[index]), self.config.sample_rate)  # (samples,)
        clip = np.array(crop_or_pad(wave[start:], self.config.clip_samples), dtype=np.float32)
        return clip, None  # (the clip, no short read learned)


def all_augmentations_on(config: Config) -> Config:
    """Every waveform augmentation at probability 1.0 (the worst case per clip)."""
    return replace(
        config, pitch_shift_p=1.0, background_noise_p=1.0, gaussian_noise_p=1.0, uniform_noise_p=1.0
    )


def noise_bank_for(table: pd.DataFrame, files: int = 4) -> NoiseBank:
    """A background bank cut from the longest distinct ogg recordings of the corpus (BirdCLEF
    2021's nocall soundscape windows are ogg 32 kHz too), 5-s segments."""
    ogg = table[table.codec == "ogg"].drop_duplicates("seconds").nlargest(files, "seconds")
    return noise_bank_from_files(list(ogg.path), 5.0, source="corpus noise")


def peak_memory_mb() -> float:
    """Peak RSS of this process image: VmHWM (Linux), which a new program starts afresh (a
    child's ru_maxrss keeps its forking parent's peak); ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_timed_loader(dataset: ClipDataset, cpu_seconds: float) -> tuple[float, float, float, int]:
    """lib.throughput.measure_loader with this process's CPU time as its clock.

    The clock it is given returns time.process_time() and records the wall time beside it. The
    loop reads the clock three times per item (start,
    after the read, after the augmentation) and leaves its first two items untimed, so both
    clocks cover exactly the same items. Returns (CPU clips/s, wall clips/s, decode share of
    the CPU time, items timed).
    """
    from lib import throughput  # imports lib.model (timm): not in the memory probes

    walls: list[float] = []

    def cpu_clock() -> float:
        walls.append(time.perf_counter())
        return time.process_time()

    rate = throughput.measure_loader(dataset, cpu_seconds, clock=cpu_clock)
    stamps = walls[6 : 6 + 3 * rate.clips]  # 3 stamps per timed item, after 2 untimed items
    wall = sum(stamps[k + 2] - stamps[k] for k in range(0, len(stamps), 3))
    return rate.clips_per_s, rate.clips / wall, rate.decode_share, rate.clips


def loader_table(table: pd.DataFrame, index_file: Path, codec: str | None) -> pd.DataFrame:
    """The dataset's table (path, seconds, primary_label): durations from the header index
    (lib.audio_index; `index_file` is reused when bench_scale saved it), one class."""
    paths = list(table.path if codec is None else table.path[table.codec == codec])
    index = load_or_build_index(paths, index_file, workers=1)
    return index[index.error == ""].assign(primary_label=CLASSES[0]).reset_index(drop=True)


def warmed_cache(folder: str, sample: pd.DataFrame, config: Config) -> tuple[AudioCache, Figure]:
    """An AudioCache (float16, budget 1.2x what `sample` needs) holding every file of it."""
    need = sum(int(s * config.sample_rate) * 2 + 128 for s in sample.seconds)
    cache = AudioCache(folder, config.sample_rate, "float16", budget_bytes=1.2 * need)
    wall, cpu = time.perf_counter(), time.process_time()
    cache.warm(list(sample.path), num_workers=1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    seconds = float(sample.seconds.sum())
    figure = (
        f"{1000 * cpu / seconds:.2f} ms CPU per audio second (wall {1000 * wall / seconds:.2f}); "
        f"disk {cache.used_bytes / seconds / 1024:.1f} KiB per audio second"
    )
    what = f"decoded cache: warm-up of {len(sample)} files ({seconds / 60:.0f} min of audio)"
    return cache, (what, "", figure)


def loader_rows(
    table: pd.DataFrame, index_file: Path, loader_seconds: float, cache_files: int
) -> tuple[list[Figure], dict[tuple[str, str, str], float]]:
    """Every MODE per codec: rows, and CPU clips/s keyed (label, probabilities, codec)."""
    torch.set_num_threads(1)
    recipe = Config()
    configs = {"p=1": all_augmentations_on(recipe), "recipe": recipe}
    bank = noise_bank_for(table)
    augments = {k: WaveAugment(c, noise_bank=bank) for k, c in configs.items()}
    rows: list[Figure] = [("noise bank (background noise)", "ogg", f"{len(bank)} segments of 5 s")]
    rates = {}
    for codec in sorted(set(table.codec), reverse=True):  # ogg, mp3
        data = loader_table(table, index_file, codec)
        for label, kind, probs in MODES:
            with tempfile.TemporaryDirectory(prefix="bench-scale-cache-") as folder:
                cache, part = None, data
                if kind == "cache":
                    part = data.sample(min(cache_files, len(data)), random_state=0)
                    cache, warm = warmed_cache(folder, part, configs[probs])
                    rows.append((warm[0], codec, warm[2]))
                dataset_class = WholeFileDataset if kind == "whole" else ClipDataset
                dataset = dataset_class(part, CLASSES, configs[probs], cache, True, augments[probs])
                cpu, wall, share, clips = cpu_timed_loader(dataset, loader_seconds)
            rates[(label, probs, codec)] = cpu
            augmented = "all augmentations p=1" if probs == "p=1" else "recipe augmentation p"
            rows.append(
                (
                    f"loader, {label}, {augmented}",
                    codec,
                    f"{cpu:.0f} clips/s per core (wall {wall:.0f}; decode {share:.0%}; "
                    f"{clips} clips)",
                )
            )
    rows.append(("peak memory after the loader", "all", f"{peak_memory_mb():.0f} MiB"))
    return rows, rates


def augmentation_cost_rows(table: pd.DataFrame, repeats: int) -> list[Figure]:
    """CPU ms per 5-s clip of each waveform augmentation alone (medians of `repeats`): where
    the loader's time goes once the crop is decoded."""
    config = Config()
    bank = noise_bank_for(table)
    augment = WaveAugment(config, noise_bank=bank)
    rng = np.random.default_rng(0)
    clip = load_audio(bank.segments[0].path, config.sample_rate, 0.0, 5.0)  # (clip_samples,)
    steps = {
        "pitch shift (soxr, +-2 semitones)": lambda: pitch_shift(
            clip, float(rng.uniform(-2, 2)), config.sample_rate
        ),
        "background noise: decode a bank segment": lambda: augment.background(rng),
        "background noise: mix it in": lambda: add_background(clip, clip[::-1].copy(), 10.0, rng),
        "Gaussian noise": lambda: add_gaussian_noise(clip, 20.0, rng),
        "uniform noise": lambda: add_uniform_noise(clip, 20.0, rng),
    }
    rows = []
    for name, step in steps.items():
        step()  # first call: set-up
        times = []
        for _ in range(repeats):
            cpu = time.process_time()
            step()
            times.append(time.process_time() - cpu)
        rows.append((f"augmentation alone: {name}", "", f"{1000 * np.median(times):.2f} ms CPU"))
    return rows


def make_loader_row(table: pd.DataFrame, index_file: Path, batch_size: int, batches: int) -> Figure:
    """End to end through lib.dataset.make_loader (num_workers 0: this process), both codecs
    mixed as in the corpus, crop decoding, augmentations p=1."""
    config = replace(all_augmentations_on(Config()), num_workers=0, batch_size=batch_size)
    augment = WaveAugment(config, noise_bank=noise_bank_for(table))
    dataset = ClipDataset(
        loader_table(table, index_file, None), CLASSES, config, None, True, augment
    )
    loader = iter(make_loader(dataset, config, shuffle=True))
    next(loader)  # first batch: imports, soxr set-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        waves, _targets = next(loader)  # (batch, clip_samples), (batch, 1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    clips = batches * batch_size
    return (
        f"make_loader (0 workers), {batches} batches of {batch_size}, crop decoding, p=1",
        "mix",
        f"{clips / cpu:.0f} clips/s per core (wall {clips / wall:.0f}); batch {tuple(waves.shape)}",
    )


def memory_probe(table: pd.DataFrame, files: int, items: int) -> float:
    """Peak RSS (MiB) of a fresh process that indexes `files` corpus files, builds the training
    dataset on them and draws `items` augmented clips (crop decoding): to compare sizes."""
    torch.set_num_threads(1)
    sample = table.sample(files, random_state=0, replace=files > len(table))
    index = read_durations(list(sample.path), workers=1)
    data = index.assign(primary_label=CLASSES[0])
    config = all_augmentations_on(Config())
    augment = WaveAugment(config, noise_bank=noise_bank_for(table))
    dataset = ClipDataset(data, CLASSES, config, None, True, augment)
    for i in np.random.default_rng(0).integers(0, len(dataset), items):
        dataset[int(i)]
    return peak_memory_mb()
