"""Training data: 5-second crops decoded straight from the files, an optional decoded-audio
cache under a byte budget, the clip dataset and its loader.

Each epoch's crop is decoded on its own (seek + read, lib.audio.load_audio with offset and
duration): its cost does not grow with the recording's length, and durations come from the
headers, read once before training (lib.train_data). The cache (whole recordings as memory-
mapped .npy, float16 by default: its rounding error, about 66 dB below the signal, lies under
the noise floor of field recordings) is a speed-up for when the loader, not the device, is the
bottleneck: it stops writing at its budget or the disk's free margin, with one warning.

Randomness is per item, seeded from (config.seed, epoch, index): the crop and augmentations of
an item do not depend on which worker, how many workers or which DDP rank loads it, so a run is
reproducible whatever num_workers is, and a resumed run replays the same epochs.

A recording that cannot be decoded, whose whole audio is silent, or whose data end before any
audio (a cut download) is skipped at first use: a silent clip with an all-zero target in
training (a true "no species here"), a silent clip with its target in validation (the scored
truth does not change mid-run); it is listed in the run's skipped_files.csv (SkipLog) and warned
about, and the epoch goes on. A file whose header promises more audio than its data hold (an
interrupted download: 180 s promised, 70 s there) is found at the first read that comes back
short: its real length is shared with every worker and kept in the run folder
(lib.audio_index.LoaderFindings), and crops are drawn inside it, never in zeros past its end.
Whether a file is silent throughout is judged on a few crops (SILENT_PROBE_CROPS), once per run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing as mp
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from tqdm.auto import tqdm

from lib.atomic import AtomicTarget
from lib.audio import AudioError, audio_info, crop_or_pad, load_audio, load_crop
from lib.audio_index import DECODED_SECONDS, SILENT, LoaderFindings
from lib.config import Config
from lib.sources import parse_label_list

CACHE_DTYPES = ("float16", "float32")
GB = 1e9
NPY_HEADER_BYTES = 128
SKIPPED_COLUMNS = ("path", "source", "reason")
WARNED_FILES_PER_PROCESS = 3  # then one line pointing at the list; a bad source stays readable
SILENT_PROBE_CROPS = 4  # crops spread over a recording that decide "silent throughout"
HAS_SOUND, SILENT_FILE, JUDGING = 1, 2, 3  # ClipDataset's shared verdicts (0: not judged)
CUT_TOLERANCE = 0.01  # seconds a whole decode may fall short of its header without a cut
CUT_USABLE_SECONDS = 1.0  # a cut file with less audio than this is skipped, not trained on


def size_text(nbytes: float) -> str:
    """Bytes as people read them: '812.0 KB', '3.21 GB'."""
    for unit, scale in (("GB", GB), ("MB", 1e6), ("KB", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.{2 if unit == 'GB' else 1}f} {unit}"
    return f"{int(nbytes)} B"


def _fork_context():
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
        self._lock = _fork_context().Lock()
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


class SkipLog:
    """The run's list of skipped recordings, a CSV (path, source, reason).

    The header pass writes it whole (`write`); loader workers append a row when they meet a bad
    file (`append`: one O_APPEND write per row, safe across processes); `read` de-duplicates.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def write(self, rows: pd.DataFrame) -> None:
        frame = pd.DataFrame(rows, columns=list(SKIPPED_COLUMNS))
        with AtomicTarget(self.path) as target:
            frame.to_csv(target.tmp, index=False)

    def append(self, path: str, source: str, reason: str) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if not self.path.is_file():
            writer.writerow(SKIPPED_COLUMNS)
        writer.writerow((path, source, reason))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.getvalue().encode())
        finally:
            os.close(fd)

    def read(self) -> pd.DataFrame:
        if not self.path.is_file():
            return pd.DataFrame(columns=list(SKIPPED_COLUMNS))
        frame = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        return frame.drop_duplicates("path", keep="first").reset_index(drop=True)


def secondary_weights(table: pd.DataFrame, config: Config) -> np.ndarray:
    """(rows,) weight of each row's secondary labels in its target: the row's own
    `secondary_weight` where finite (a labelled soundscape segment: 1.0, every label was
    heard there), else config.secondary_label_weight when config.use_secondary_labels, else 0."""
    default = config.secondary_label_weight if config.use_secondary_labels else 0.0
    if "secondary_weight" not in table.columns:
        return np.full(len(table), default, dtype=np.float32)
    own = pd.to_numeric(table["secondary_weight"], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(own), own, default).astype(np.float32)


def make_targets(table: pd.DataFrame, classes: list[str], config: Config) -> np.ndarray:
    """(rows, classes) float32: primary 1.0; secondaries at `secondary_weights`. Labels
    outside `classes` are ignored (zero row if all are). Labels are compared as strings;
    secondary labels may be lists or the "['a', 'b']" strings of a fold table read from CSV."""
    column = {str(label): k for k, label in enumerate(classes)}
    targets = np.zeros((len(table), len(classes)), dtype=np.float32)
    weights = secondary_weights(table, config)
    has_secondary = "secondary_labels" in table.columns
    secondaries = table["secondary_labels"] if has_secondary else [()] * len(table)
    rows = zip(table["primary_label"], secondaries, weights, strict=True)
    for row, (primary, extra, weight) in enumerate(rows):
        for label in parse_label_list(extra) if weight > 0 else ():
            if label in column:
                targets[row, column[label]] = weight
        if str(primary) in column:
            targets[row, column[str(primary)]] = 1.0
    return targets


class ClipDataset(Dataset):
    """(wave (clip_samples,) float32, target (n_classes,) float32) per recording.

    train=True: a random crop (short recordings zero-padded at the end) then `augment(wave,
    rng)`; train=False: the first clip_seconds, no augmentation. A row with a finite `offset`
    (a labelled soundscape segment, lib.sources.soundscape_segments) is always the clip that
    starts there. Crops are decoded directly
    from the file; `cache` (AudioCache or None) serves them from decoded audio when it holds
    them. Durations come from the table's `seconds` column (the header pass), else from the
    file's header at first use. A bad file never raises mid-epoch (see the module docstring);
    `skip_log` (SkipLog or None) lists it.

    What the headers cannot say is learned on the way and shared: a cut file's real length (a
    read that came back short) and whether a recording is silent throughout. Both live in
    shared memory (every loader worker of this dataset sees them at once) and in `findings`
    (lib.audio_index.LoaderFindings, the run folder's loader_findings.csv: later folds and
    resumed sessions start with them).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: list[str],
        config: Config,
        cache: AudioCache | None = None,
        train: bool = True,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        skip_log: SkipLog | None = None,
        findings: LoaderFindings | None = None,
    ):
        # Numpy arrays, not lists: forked workers would copy a list's pages by touching each
        # str's refcount (PyTorch's "memory leak" with many workers).
        self.paths = np.asarray(table["path"].astype(str).to_numpy(), dtype=str)
        seconds = table["seconds"] if "seconds" in table.columns else np.full(len(table), np.nan)
        self.seconds = np.array(pd.to_numeric(pd.Series(seconds)), dtype=np.float64)
        sources = table["source"].astype(str) if "source" in table.columns else [""] * len(table)
        offsets = table["offset"] if "offset" in table.columns else np.full(len(table), np.nan)
        # A labelled soundscape segment's start (seconds): its clip is read there, never drawn.
        self.offsets = pd.to_numeric(pd.Series(offsets), errors="coerce").to_numpy(float)
        self.sources = np.asarray(sources, dtype=str)
        self.targets = make_targets(table, classes, config)  # (rows, classes)
        self.config, self.cache, self.train, self.augment = config, cache, train, augment
        self.skip_log, self.findings = skip_log, findings
        # Shared memory: set_epoch in the main process reaches persistent worker copies, and
        # what one worker learns about a file reaches the others.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        # Per file (rows may repeat a file): a cut file's real length in seconds (NaN: not
        # cut), and the silence verdict (0: not judged yet, HAS_SOUND, SILENT_FILE).
        files, self._file = np.unique(self.paths, return_inverse=True)
        self._decoded = torch.full((len(files),), np.nan, dtype=torch.float64).share_memory_()
        self._silence = torch.zeros(len(files), dtype=torch.int8).share_memory_()
        self._judging = _fork_context().Lock()  # one worker claims a file's silence verdict
        self._listed: set[str] = set()  # files listed as skipped by this process
        self._noted: set[str] = set()  # (kind, file) warned about by this process
        self._warned = 0
        self._apply_findings()

    def _apply_findings(self) -> None:
        known = self.findings.read() if self.findings is not None else {}
        if not known:
            return
        for row, path in enumerate(self.paths.tolist()):
            decoded = known.get((path, DECODED_SECONDS))
            if decoded is not None:
                self._decoded[self._file[row]] = decoded
            silent = known.get((path, SILENT))
            if silent is not None:
                self._silence[self._file[row]] = SILENT_FILE if silent else HAS_SOUND

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

    def duration(self, index: int) -> float:
        """Seconds of recording `index` by its header: the table's, else read once (per
        process) from the file; raises AudioError."""
        seconds = float(self.seconds[index])
        if not np.isfinite(seconds):
            seconds = self.seconds[index] = audio_info(str(self.paths[index])).seconds
        return seconds

    def decoded_seconds(self, index: int) -> float | None:
        """The real length of a file found cut (shorter than its header says), else None."""
        seconds = float(self._decoded[self._file[index]])
        return seconds if np.isfinite(seconds) else None

    def _samples(self, seconds: float) -> int:
        return int(seconds * self.config.sample_rate)

    def _draw(self, rng: np.random.Generator, samples: int) -> int:
        size = self.config.clip_samples
        return int(rng.integers(0, samples - size + 1)) if samples > size else 0

    def crop_start(self, index: int, rng: np.random.Generator) -> int:
        """First sample (at config.sample_rate) of this epoch's crop; 0 in validation and for
        recordings no longer than a clip. Drawn over the header's length, then (a cut file)
        drawn again inside the audio when it reaches past it: the same draws whether the cut
        was known beforehand or found by this crop's read (see `clip`), so a run does not
        depend on which worker found it first. A soundscape segment (a finite `offset` in the
        table) starts at its offset, in training and validation alike."""
        if np.isfinite(self.offsets[index]):
            return int(round(self.offsets[index] * self.config.sample_rate))
        if not self.train:
            return 0
        return self._inside(index, self._draw(rng, self._samples(self.duration(index))), rng)

    def _inside(self, index: int, start: int, rng: np.random.Generator) -> int:
        decoded = self.decoded_seconds(index)
        if not self.train or decoded is None or np.isfinite(self.offsets[index]):
            return start
        real = self._samples(decoded)
        return self._draw(rng, real) if start + self.config.clip_samples > real else start

    def read_crop(self, index: int, start: int) -> tuple[np.ndarray, float | None]:
        """clip_samples float32 from sample `start` (zero-padded past the audio), and the
        file's real length when this read found it cut (else None); raises AudioError."""
        c, path = self.config, str(self.paths[index])
        if self.cache is not None:
            seconds = float(self.seconds[index])
            wave = self.cache.get(path, seconds if np.isfinite(seconds) else None)
            if wave is not None:
                clip = np.array(crop_or_pad(wave[start:], c.clip_samples), dtype=np.float32)
                cut = np.isfinite(seconds) and len(wave) < self._samples(seconds - CUT_TOLERANCE)
                return clip, len(wave) / c.sample_rate if cut else None
        crop = load_crop(path, c.sample_rate, start / c.sample_rate, c.clip_seconds)
        return crop.wave, crop.decoded_seconds

    def _new_cut(self, index: int, seconds: float) -> bool:
        """Whether `seconds` tells more than the cut length known (a whole decode from the
        cache and a crop read may differ by a few samples)."""
        known = self.decoded_seconds(index)
        return known is None or abs(known - seconds) > CUT_TOLERANCE

    def learn_length(self, index: int, seconds: float) -> None:
        """Keep a cut file's real length for every worker, fold and session; warn once."""
        if not self._new_cut(index, seconds):
            return
        self._decoded[self._file[index]] = seconds
        path = str(self.paths[index])
        where = "nowhere (findings=None)"
        if self.findings is not None:
            self.findings.append(path, DECODED_SECONDS, seconds)
            where = str(self.findings.path)
        if seconds < CUT_USABLE_SECONDS:
            return  # skipped and listed: see _cut_unusable
        self._warn(
            f"cut {path}",
            f"{path}: the header says {self.duration(index):.1f} s but the audio ends at "
            f"{seconds:.1f} s (a cut download?); crops are drawn inside the audio; noted in "
            f"{where}",
        )

    def is_silent_file(self, index: int) -> bool:
        """Whether the whole recording is below config.silent_peak, judged on
        SILENT_PROBE_CROPS crops spread over its audio (a bounded cost, whatever its length;
        only asked when a crop is silent, which a real field recording almost never is).
        Decided once per run: the verdict is shared with the other workers and kept in the
        findings."""
        file = self._file[index]
        with self._judging:
            state = int(self._silence[file])
            if state == 0:
                self._silence[file] = JUDGING  # claimed: this process writes the verdict
        if state in (HAS_SOUND, SILENT_FILE):
            return state == SILENT_FILE
        silent = self._probe_silence(index)  # another worker judging it meanwhile: the same
        if state == JUDGING:
            return silent
        self._silence[file] = SILENT_FILE if silent else HAS_SOUND
        if self.findings is not None:
            self.findings.append(str(self.paths[index]), SILENT, float(silent))
        return silent

    def probe_starts(self, index: int) -> list[int]:
        """Where the silence probes start: SILENT_PROBE_CROPS crops evenly over the audio."""
        seconds = self.decoded_seconds(index)
        seconds = self.duration(index) if seconds is None else seconds
        last = max(self._samples(seconds) - self.config.clip_samples, 0)
        return np.unique(np.linspace(0, last, SILENT_PROBE_CROPS).round().astype(int)).tolist()

    def _probe_silence(self, index: int) -> bool:
        starts, k = self.probe_starts(index), 0
        while k < len(starts):
            clip, cut = self.read_crop(index, starts[k])
            if cut is not None and self._new_cut(index, cut):
                self.learn_length(index, cut)
                starts, k = self.probe_starts(index), 0  # spread again over the real audio
                continue
            if float(np.max(np.abs(clip))) >= self.config.silent_peak:
                return False
            k += 1
        return True

    def skip(self, index: int, reason: str) -> None:
        """Record a bad recording once per process: list it and warn (a few times, then once)."""
        path = str(self.paths[index])
        if path in self._listed:
            return
        self._listed.add(path)
        where = self.skip_log.path if self.skip_log is not None else "no list (skip_log=None)"
        if self.skip_log is not None:
            self.skip_log.append(path, str(self.sources[index]), reason)
        self._warn(f"skip {path}", f"{path}: {reason}; skipped (a silent clip), listed in {where}")

    def _warn(self, key: str, message: str) -> None:
        """Warn once per process per `key`; past WARNED_FILES_PER_PROCESS, one last line."""
        if key in self._noted:
            return
        self._noted.add(key)
        self._warned += 1
        if self._warned <= WARNED_FILES_PER_PROCESS:
            warnings.warn(message, stacklevel=4)
        elif self._warned == WARNED_FILES_PER_PROCESS + 1:
            lists = [str(x.path) for x in (self.skip_log, self.findings) if x is not None]
            warnings.warn(f"more recordings skipped or cut; see {lists}", stacklevel=4)

    def _cut_unusable(self, index: int) -> bool:
        """A cut file with under CUT_USABLE_SECONDS of audio: listed (once) and skipped."""
        decoded = self.decoded_seconds(index)
        if decoded is None or decoded >= CUT_USABLE_SECONDS:
            return False
        header = float(self.seconds[index])
        self.skip(index, f"cut: the header says {header:.1f} s, only {decoded:.2f} s of audio "
                         f"decode (under {CUT_USABLE_SECONDS:g} s)")  # fmt: skip
        return True

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray | None:
        """This epoch's clip of `index`, or None if the recording is skipped.

        A silent or fully cut recording is known once checked; a read that fails is tried again
        next time, so the outcome depends on the crop alone, never on which worker met the file
        before (a resumed run must equal an uninterrupted one).
        """
        if int(self._silence[self._file[index]]) == SILENT_FILE or self._cut_unusable(index):
            return None
        try:
            start = self.crop_start(index, rng)
            clip, cut = self.read_crop(index, start)
            if cut is not None:
                self.learn_length(index, cut)
                if self._cut_unusable(index):
                    return None
                again = self._inside(index, start, rng)
                if again != start:
                    clip, _ = self.read_crop(index, again)
            if float(np.max(np.abs(clip))) < self.config.silent_peak and self.is_silent_file(index):
                self.skip(index, f"silent (peak below silent_peak {self.config.silent_peak:g})")
                return None
        except (AudioError, OSError) as err:
            self.skip(index, f"unreadable ({err})")
            return None
        return clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        clip = self.clip(index, rng)
        target = self.targets[index].copy()
        if clip is None:
            clip = np.zeros(self.config.clip_samples, dtype=np.float32)
            if self.train:
                target[:] = 0.0  # a silent clip says "no species here", nothing more
        if self.train and self.augment is not None:
            clip = np.asarray(self.augment(clip, rng), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(clip)), torch.from_numpy(target)


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
    """fork where it exists (see _fork_context)."""
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
