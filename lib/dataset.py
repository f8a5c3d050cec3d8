"""Training data: a decoded-audio cache, the 5-second clip dataset and its loader.

Decoding ogg/mp3 every epoch costs more CPU than a T4 needs to train on the clip, so each
recording is decoded once to a 32 kHz mono .npy and memory-mapped: a random 5-second crop then
reads only its own pages. float16 by default: half the disk of float32, and its rounding error
(about 66 dB below the signal) lies under the noise floor of field recordings.

Randomness is per item, seeded from (config.seed, epoch, index): the crop and augmentations of
an item do not depend on which worker, how many workers or which DDP rank loads it, so a run is
reproducible whatever num_workers is, and a resumed run replays the same epochs.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from tqdm.auto import tqdm

from lib.audio import AudioError, crop_or_pad, load_audio
from lib.config import Config
from lib.sources import parse_label_list

CACHE_DTYPES = ("float16", "float32")


class AudioCache:
    """Decoded audio on disk, one memory-mapped .npy per (file, size, mtime, rate, dtype).

    The key holds the file's size and modification time, so a replaced recording is decoded
    again; the rate and dtype, so caches for different settings live side by side. Entries
    are written to a temporary name and renamed: a run killed mid-write leaves no half file.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        sample_rate: int = 32000,
        dtype: str = "float16",
        max_seconds: float = 0.0,
    ):
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"AudioCache: dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = int(sample_rate)
        self.dtype = dtype
        self.max_samples = int(max_seconds * sample_rate)  # 0: keep whole recordings
        self.decodes = 0  # files decoded by this process (cache misses)
        self._write_warned = False

    def entry(self, path: str | Path) -> Path:
        """Cache file of `path`; raises FileNotFoundError naming `path` if it is gone."""
        path = Path(path).absolute()
        stat = os.stat(path)
        text = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{self.sample_rate}|{self.dtype}"
        if self.max_samples:
            text += f"|{self.max_samples}"
        key = hashlib.sha1(text.encode()).hexdigest()[:20]
        return self.cache_dir / f"{path.stem}-{key}.npy"

    def get(self, path: str | Path) -> np.ndarray:
        """Decoded mono audio (samples,), memory-mapped read-only; decoded and stored on a miss.

        Raises AudioError (naming the file) when it cannot be decoded.
        """
        try:
            entry = self.entry(path)
        except OSError as err:
            raise AudioError(f"{path}: cannot read file ({err})") from err
        try:
            return np.load(entry, mmap_mode="r")
        except (FileNotFoundError, ValueError, EOFError):  # missing, or damaged by hand
            pass
        wave = load_audio(path, self.sample_rate).astype(self.dtype)  # (samples,)
        if self.max_samples:
            wave = wave[: self.max_samples]
        self.decodes += 1
        tmp = entry.with_name(f".{entry.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npy")
        try:
            np.save(tmp, wave)
            os.replace(tmp, entry)
        except OSError as err:  # disk full, read-only folder: train on, slower
            if not self._write_warned:
                self._write_warned = True
                warnings.warn(
                    f"AudioCache: cannot write to {self.cache_dir} ({err}); decoding without "
                    "caching from now on - free space or choose another cache_dir",
                    stacklevel=2,
                )
            return wave
        finally:
            tmp.unlink(missing_ok=True)
        return np.load(entry, mmap_mode="r")

    def has(self, path: str | Path) -> bool:
        try:
            return self.entry(path).is_file()
        except OSError:
            return False

    def warm(self, paths: Iterable[str | Path], num_workers: int = 2) -> list[str]:
        """Decode every path not yet cached, `num_workers` threads in parallel; return bad paths.

        Threads, not processes: libsndfile and soxr release the GIL, and threads need no
        pickling (a notebook's inlined classes cannot reach spawned processes). Unreadable
        files are skipped with one warning and returned, so the caller can drop them.
        """
        todo = sorted({str(p) for p in paths if not self.has(p)})
        bad: list[str] = []

        def decode(path: str) -> str | None:
            try:
                self.get(path)
            except AudioError:
                return path
            return None

        with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
            results = pool.map(decode, todo)
            for result in tqdm(results, total=len(todo), desc="decode to cache", unit="file"):
                if result is not None:
                    bad.append(result)
        if bad:
            warnings.warn(
                f"AudioCache.warm: {len(bad)} of {len(todo)} files could not be decoded and "
                f"were skipped (e.g. {bad[0]}); drop them from the table",
                stacklevel=2,
            )
        return bad


def make_targets(table: pd.DataFrame, classes: list[str], config: Config) -> np.ndarray:
    """(rows, classes) float32: primary 1.0; secondaries at config.secondary_label_weight when
    config.use_secondary_labels. Labels outside `classes` are ignored (zero row if all are).
    Secondary labels may be lists or the "['a', 'b']" strings of a fold table read from CSV."""
    column = {label: k for k, label in enumerate(classes)}
    targets = np.zeros((len(table), len(classes)), dtype=np.float32)
    use_secondary = config.use_secondary_labels and "secondary_labels" in table.columns
    secondaries = table["secondary_labels"] if use_secondary else [()] * len(table)
    for row, (primary, extra) in enumerate(zip(table["primary_label"], secondaries, strict=True)):
        for label in parse_label_list(extra):
            if label in column:
                targets[row, column[label]] = config.secondary_label_weight
        if primary in column:
            targets[row, column[primary]] = 1.0
    return targets


class ClipDataset(Dataset):
    """(wave (clip_samples,) float32, target (n_classes,) float32) per recording.

    train=True: a random crop (short recordings zero-padded at the end) then `augment(wave,
    rng)`; train=False: the first clip_seconds, no augmentation. `cache=None` decodes the file
    every time (slow; the benchmark's baseline). An unreadable file gives a silent clip with its
    target and one warning per file and process, never an exception mid-epoch.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: list[str],
        config: Config,
        cache: AudioCache | None,
        train: bool = True,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ):
        # A numpy string array, not a list: forked workers would copy a list's pages by
        # touching each str's refcount (PyTorch's "memory leak" with many workers).
        self.paths = np.asarray(table["path"].astype(str).to_numpy(), dtype=str)
        self.targets = make_targets(table, classes, config)  # (rows, classes)
        self.config, self.cache, self.train, self.augment = config, cache, train, augment
        # Shared memory: set_epoch in the main process reaches persistent worker copies.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Call before iterating each epoch: new crops per epoch, reproducible per epoch."""
        self._epoch[0] = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, self.epoch, int(index)])

    def load(self, path: str) -> np.ndarray:
        """The whole recording, (samples,), float16/32; raises AudioError."""
        if self.cache is None:
            return load_audio(path, self.config.sample_rate)
        return self.cache.get(path)

    def _wave(self, path: str) -> np.ndarray | None:
        if path in self._bad:
            return None
        try:
            return self.load(path)
        except AudioError as err:
            self._bad.add(path)
            warnings.warn(f"{err}; using a silent clip for it", stacklevel=3)
            return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.clip_samples
        rng = self.rng(index)
        wave = self._wave(str(self.paths[index]))
        if wave is None:
            clip = np.zeros(size, dtype=np.float32)
        else:
            clip = crop_or_pad(wave, size, rng if self.train else None)
            clip = np.array(clip, dtype=np.float32)  # copy out of the memory map
        if self.train and self.augment is not None:
            clip = np.asarray(self.augment(clip, rng), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(clip)), torch.from_numpy(
            self.targets[index].copy()
        )


class EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch): a resumed run sees the same order.

    (torch's RandomSampler draws from a generator whose state a restart loses.)
    """

    def __init__(self, size: int, seed: int = 42):
        self.size, self.seed, self.epoch = int(size), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.size


def seed_worker(worker_id: int) -> None:
    """Seed a worker's global RNGs from (config.seed, epoch, worker id) for third-party code;
    this module's own randomness is per item (ClipDataset.rng)."""
    info = get_worker_info()
    dataset = info.dataset if info is not None else None
    seed = getattr(getattr(dataset, "config", None), "seed", 0)
    epoch = getattr(dataset, "epoch", 0)
    state = np.random.SeedSequence([seed, epoch, worker_id]).generate_state(2)
    np.random.seed(int(state[0]))
    torch.manual_seed(int(state[1]))


def _start_method() -> str | None:
    """fork where it exists: notebooks inline this library into __main__, whose classes a
    spawned or forkserver worker cannot import (Python 3.14 made forkserver the default)."""
    return "fork" if "fork" in mp.get_all_start_methods() else None


def make_loader(
    dataset: Dataset,
    config: Config,
    shuffle: bool,
    sampler: Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader with config.batch_size and config.num_workers (persistent, seeded).

    shuffle without a sampler uses EpochSampler; call set_epoch(loader, epoch) each epoch.
    """
    if sampler is None and shuffle:
        sampler = EpochSampler(len(dataset), config.seed)
    workers = int(config.num_workers)
    extra = {}
    if workers > 0:
        extra = {
            "persistent_workers": True,
            "worker_init_fn": seed_worker,
            "multiprocessing_context": _start_method(),
        }
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        shuffle=False if sampler is not None else shuffle,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        **extra,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's dataset and sampler (EpochSampler, DistributedSampler) the epoch."""
    for part in (loader.dataset, loader.sampler):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)
