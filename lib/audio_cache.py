"""The decoded-audio cache: whole recordings as memory-mapped .npy under a byte budget.

A speed-up for when the loader, not the device, is the bottleneck (the plan says so): float16
by default (its rounding error, about 66 dB below the signal, lies under the noise floor of
field recordings). It stops writing at its budget or at the disk's free margin, with one
warning, and the loader then decodes crops directly (lib.dataset).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lib.atomic import AtomicTarget
from lib.audio import AudioError, load_audio
from lib.config import Config

CACHE_DTYPES = ("float16", "float32")
GB = 1e9
NPY_HEADER_BYTES = 128


def size_text(nbytes: float) -> str:
    """Bytes as people read them: '812.0 KB', '3.21 GB'."""
    for unit, scale in (("GB", GB), ("MB", 1e6), ("KB", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.{2 if unit == 'GB' else 1}f} {unit}"
    return f"{int(nbytes)} B"


def fork_context():
    """fork where it exists: notebooks inline this library into __main__, whose classes a
    spawned or forkserver worker cannot import (Python 3.14 made forkserver the default)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)


class AudioCache:
    """Decoded audio on disk, one memory-mapped .npy per (file, size, mtime, rate, dtype).

    The key holds the file's size and modification time, so a replaced recording is decoded
    again; the rate and dtype, so caches for different settings live side by side. Entries are
    written with lib.atomic: a run killed mid-write leaves no half file.

    Before every write the entry's size is checked against `budget_bytes` (None: no budget) and
    the disk's free space against `min_free_bytes`. When either would be crossed, nothing more
    is written, one warning gives the numbers, and `get` returns None: the caller decodes the
    crop directly. The byte counter lives in shared memory, so the loader's forked workers
    share one budget; `share` (1 / number of DDP ranks) splits what is left between ranks.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        sample_rate: int = 32000,
        dtype: str = "float16",
        budget_bytes: float | None = None,
        min_free_bytes: float = 0.0,
        share: float = 1.0,
    ):
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"AudioCache: dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = int(sample_rate)
        self.dtype = dtype
        self.budget_bytes = None if budget_bytes is None else float(budget_bytes)
        self.min_free_bytes = float(min_free_bytes)
        start_bytes, start_files = self._scan()
        self.start_bytes, self.start_files = start_bytes, start_files
        room = None if self.budget_bytes is None else max(0.0, self.budget_bytes - start_bytes)
        self.allowance = None if room is None else room * float(share)  # bytes this rank may add
        # Shared across forked workers: bytes written, files written, files refused, warned.
        self._stats = torch.zeros(4, dtype=torch.int64).share_memory_()
        self._lock = fork_context().Lock()
        self.decodes = 0  # files decoded whole by this process (cache misses)

    def _scan(self) -> tuple[int, int]:
        """Bytes and count of the entries already in the folder (temporary files excluded)."""
        total = count = 0
        with os.scandir(self.cache_dir) as entries:
            for item in entries:
                if item.name.endswith(".npy") and ".tmp-" not in item.name and item.is_file():
                    total += item.stat().st_size
                    count += 1
        return total, count

    @property
    def used_bytes(self) -> int:
        return self.start_bytes + int(self._stats[0])

    @property
    def files_cached(self) -> int:
        return self.start_files + int(self._stats[1])

    @property
    def full(self) -> bool:
        """The budget or the disk margin was reached once: nothing more is written."""
        return bool(int(self._stats[3]))

    @property
    def files_refused(self) -> int:
        return int(self._stats[2])

    def entry_bytes(self, seconds: float) -> int:
        """Size of the entry of a recording of `seconds` seconds."""
        itemsize = np.dtype(self.dtype).itemsize
        return int(round(seconds * self.sample_rate)) * itemsize + NPY_HEADER_BYTES

    def entry(self, path: str | Path) -> Path:
        """Cache file of `path`; raises FileNotFoundError naming `path` if it is gone."""
        path = Path(path).absolute()
        stat = os.stat(path)
        text = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{self.sample_rate}|{self.dtype}"
        key = hashlib.sha1(text.encode()).hexdigest()[:20]
        return self.cache_dir / f"{path.stem}-{key}.npy"

    def _refusal(self, nbytes: int) -> str | None:
        """Why an entry of `nbytes` may not be written now (None: it may)."""
        if self.allowance is not None and int(self._stats[0]) + nbytes > self.allowance:
            return f"budget {size_text(self.budget_bytes)} reached (cache_budget_gb)"
        free = shutil.disk_usage(self.cache_dir).free
        if free - nbytes < self.min_free_bytes:
            return (
                f"the disk has {size_text(free)} free, margin {size_text(self.min_free_bytes)} "
                "(cache_min_free_gb)"
            )
        return None

    def _reserve(self, nbytes: int) -> bool:
        """Count `nbytes` against the budget if they fit; else refuse (and warn once)."""
        with self._lock:
            reason = "full" if int(self._stats[3]) else self._refusal(nbytes)
            if reason is None:
                self._stats[0] += nbytes
                self._stats[1] += 1
                return True
            self._stats[2] += 1
            first = int(self._stats[3]) == 0
            self._stats[3] = 1
        if first:
            self._warn(
                f"{reason}: {size_text(self.used_bytes)} used by {self.files_cached} cached "
                f"files; this file ({size_text(nbytes)}) and every further one are not cached "
                "(crops are decoded directly, slower)"
            )
        return False

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self._stats[0] -= nbytes
            self._stats[1] -= 1

    def _adjust(self, nbytes: int) -> bool:
        """Count `nbytes` more for an entry already reserved, if the budget allows."""
        with self._lock:
            if self.allowance is not None and int(self._stats[0]) + nbytes > self.allowance:
                return False
            self._stats[0] += nbytes
            return True

    def _warn(self, message: str) -> None:
        warnings.warn(
            f"AudioCache {self.cache_dir}: {message}; raise cache_budget_gb, free disk space or "
            "choose another cache_dir",
            stacklevel=4,
        )

    def get(self, path: str | Path, seconds: float | None = None) -> np.ndarray | None:
        """Decoded mono audio (samples,): memory-mapped when cached; on a miss decoded whole and
        stored if it fits the budget (sized from `seconds` when known, before decoding).

        Returns None when the entry is missing and does not fit (nothing decoded then), or the
        decoded array when it fit the estimate but not the write. Raises AudioError (naming the
        file) when it cannot be decoded.
        """
        try:
            entry = self.entry(path)
        except OSError as err:
            raise AudioError(f"{path}: cannot read file ({err})") from err
        try:
            return np.load(entry, mmap_mode="r")
        except (FileNotFoundError, ValueError, EOFError):  # missing, or damaged by hand
            pass
        reserved = self.entry_bytes(seconds) if seconds is not None else 0
        if reserved and not self._reserve(reserved):  # checked before decoding
            return None
        try:
            wave = load_audio(path, self.sample_rate).astype(self.dtype)  # (samples,)
        except AudioError:
            if reserved:
                self._release(reserved)
            raise
        self.decodes += 1
        nbytes = wave.nbytes + NPY_HEADER_BYTES
        if reserved and not self._adjust(nbytes - reserved):  # the header was a little off
            self._release(reserved)
            return wave
        if not reserved and not self._reserve(nbytes):
            return wave
        try:
            with AtomicTarget(entry) as target:
                np.save(target.tmp, wave)
        except OSError as err:  # disk full, read-only folder: train on, decoding crops
            self._release(nbytes)
            with self._lock:
                first = int(self._stats[3]) == 0
                self._stats[3] = 1
            if first:
                self._warn(
                    f"cannot write ({err}); {size_text(self.used_bytes)} used by "
                    f"{self.files_cached} cached files; nothing more is cached"
                )
            return wave
        return np.load(entry, mmap_mode="r")

    def has(self, path: str | Path) -> bool:
        try:
            return self.entry(path).is_file()
        except OSError:
            return False

    def warm(self, paths: Iterable[str | Path], num_workers: int = 2) -> list[str]:
        """Decode every path not yet cached (within the budget), `num_workers` threads in
        parallel; return the unreadable paths.

        Threads, not processes: libsndfile and soxr release the GIL, and threads need no
        pickling (a notebook's inlined classes cannot reach spawned processes).
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


def make_cache(config: Config, cache_dir: str | Path | None, share: float = 1.0):
    """The decoded-audio cache the config asks for, or None (cache_budget_gb = 0: crops are
    decoded directly). `cache_dir` None: a temporary folder, lost with the session; point it
    at a persistent folder to keep the cache across resumed sessions."""
    if config.cache_budget_gb <= 0:
        return None
    return AudioCache(
        cache_dir or default_cache_dir(),
        config.sample_rate,
        config.cache_dtype,
        budget_bytes=config.cache_budget_gb * GB,
        min_free_bytes=config.cache_min_free_gb * GB,
        share=share,
    )


def default_cache_dir() -> Path:
    """Decoded audio outside the run (not an output); shared by runs, keyed by file and rate."""
    import tempfile

    return Path(tempfile.gettempdir()) / "birdclef-audio-cache"
