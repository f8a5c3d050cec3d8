"""Offline inference: test soundscapes -> submission.csv with every fold model, on CPU workers.

Per file, in a worker: decode (lib.audio.decode_soundscape) -> 5-second windows
(lib.audio.make_windows) -> log-mel once per window (lib.features.LogMel) -> every fold's
model -> mean of the folds' window probabilities -> finite, clipped to [0, max_probability].

The fold models run on one engine for the whole run: onnxruntime sessions (fold<k>.onnx), or
PyTorch (fold<k>.pt, lib.infer_torch) when onnxruntime is not importable or cannot create a
session for the models (probed in a subprocess before the workers fork: `choose_engine`). Only
the per-fold call differs; the deadline guard measures the engine that runs.
The parent only schedules: it hands files to workers, lets the DeadlineGuard (lib.guard) choose
each file's fold count, and streams results into the submission in file order.

Where the rest lives: the workers, their sessions and the core count (forked pool, why fork)
in lib.infer_workers; never-raising decoding and fallback row ids in lib.audio; the models
folder's file names and ONNX input/output names in lib.models_dataset (lib.export writes them).
processes x threads never exceeds the cores (lib.infer_workers.plan_workers); processes == 1
runs in this process with no pool at all.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.atomic import AtomicTarget
from lib.audio import decode_soundscape, expected_ends, make_windows, silent_windows
from lib.config import Config
from lib.features import LogMel
from lib.guard import DeadlineGuard
from lib.infer_torch import load_torch_fold
from lib.infer_workers import (
    ENGINE_ONNXRUNTIME,
    ENGINE_TORCH,
    ENGINES,
    InlineRunner,
    PoolRunner,
    available_cores,
    make_session,
    onnxruntime_importable,
    plan_workers,
    probe_sessions,
    share_arena,
    start_method,
)
from lib.models_dataset import (
    CLASSES_FILE,
    CONFIG_FILE,
    FOLD_FILE_GLOB,
    INPUT_NAME,
    OUTPUT_NAME,
    TORCH_FILE_GLOB,
    fold_number,
    torch_fold_number,
)

LOG = logging.getLogger("birdclef.infer")
MAX_POOL_RESTARTS = 8  # then fallback rows; a file that kills its worker costs 2 restarts
FLOAT_FORMAT = "%.6g"


# --- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelBundle:
    """The models dataset: fold models in fold order (ONNX files and PyTorch weights), the class
    list, the feature settings."""

    paths: tuple[Path, ...]  # fold<k>.onnx
    classes: tuple[str, ...]
    config: Config  # the models' own config: log-mel settings must match training
    weights: tuple[Path, ...] = ()  # fold<k>.pt, for the PyTorch engine

    def fold_paths(self, engine: str) -> tuple[Path, ...]:
        """The files the engine loads, one per fold."""
        return self.weights if engine == ENGINE_TORCH else self.paths


def _folds(folder: Path, pattern: str, number) -> tuple[Path, ...]:
    found = {number(p.name): p for p in folder.glob(pattern)}
    return tuple(found[k] for k in sorted(k for k in found if k is not None))


def load_bundle(models_dir: str | Path) -> ModelBundle:
    """Read a folder written by lib.export.export_run (lib.models_dataset: fold<k>.onnx,
    fold<k>.pt, classes.json, config.json)."""
    folder = Path(models_dir)
    paths = _folds(folder, FOLD_FILE_GLOB, fold_number)
    weights = _folds(folder, TORCH_FILE_GLOB, torch_fold_number)
    missing = [n for n in (CLASSES_FILE, CONFIG_FILE) if not (folder / n).is_file()]
    if not (paths or weights) or missing:
        raise FileNotFoundError(
            f"{folder}: not a models folder (fold<k>.onnx: {len(paths)}, fold<k>.pt: "
            f"{len(weights)}, missing: {missing}); export one with lib.export.export_run"
        )
    classes = tuple(json.loads((folder / CLASSES_FILE).read_text()))
    return ModelBundle(paths, classes, Config.load(folder / CONFIG_FILE), weights)


@dataclass(frozen=True)
class EngineChoice:
    """The engine the run uses, and why it is not onnxruntime ("" when it is)."""

    engine: str  # "onnxruntime" or "torch" (lib.infer_workers.ENGINES)
    reason: str = ""


def choose_engine(bundle: ModelBundle, engine=None, reason: str = "") -> EngineChoice:
    """onnxruntime when asked (or, with `engine` None, when importable) and a probe subprocess
    creates a session for every fold; else torch, with the reason. An EngineChoice is taken as
    already decided. Never creates a session in this process (the workers fork from it)."""
    if isinstance(engine, EngineChoice):
        return engine
    if engine not in (None, *ENGINES):
        raise ValueError(f"engine must be one of {ENGINES} or None, got {engine!r}")
    if engine == ENGINE_TORCH:
        return EngineChoice(ENGINE_TORCH, reason or "torch engine requested")
    why = onnxruntime_importable()
    if not why and not bundle.paths:
        why = "the models dataset has no fold<k>.onnx"
    if not why:
        feats = bundle.config
        why = probe_sessions(bundle.paths, INPUT_NAME, feats.n_mels, feats.n_frames)
    if why:
        LOG.warning("engine: torch (fallback: %s)", why)
        return EngineChoice(ENGINE_TORCH, why)
    return EngineChoice(ENGINE_ONNXRUNTIME)


def engine_line(choice: EngineChoice, version: str | None = None, wheel: str | None = None):
    """What the notebook prints: `engine: onnxruntime 1.32.0 (<wheel>)` or
    `engine: torch (fallback: <reason>)`."""
    if choice.engine == ENGINE_TORCH:
        return f"engine: torch (fallback: {choice.reason})"
    return f"engine: onnxruntime {version or '?'} ({wheel or 'already installed'})"


# --- one file -------------------------------------------------------------------------------


@dataclass
class FileResult:
    """One soundscape's rows; picklable, so workers return it to the parent."""

    index: int  # position in the sorted file list: the submission's order
    stem: str
    ends: np.ndarray  # (n,) int end seconds
    probs: np.ndarray  # (n, classes) float32, finite, in [0, max_probability]
    folds: int  # fold models used; 0 = fallback rows
    warnings: list[str] = field(default_factory=list)
    decode_s: float = 0.0
    features_s: float = 0.0
    model_s: float = 0.0


def finalize(probs: np.ndarray, config: Config) -> np.ndarray:
    """NaN/inf -> fallback, then clip to [0, max_probability] (the metric pads with ones)."""
    probs = np.nan_to_num(probs, nan=config.fallback_probability, posinf=1.0, neginf=0.0)
    return np.clip(probs, 0.0, config.max_probability).astype(np.float32)


def fallback_result(index: int, path: Path, bundle: ModelBundle, config: Config, why: str):
    """Fallback rows for a whole file (row count from its header, else 10 minutes)."""
    feats = bundle.config
    ends = expected_ends(
        path, feats.sample_rate, feats.clip_seconds, feats.min_tail_seconds,
        expected_seconds=config.test_file_seconds,
    )  # fmt: skip  # the year's test-file length when the header cannot be read
    probs = np.full((len(ends), len(bundle.classes)), config.fallback_probability, np.float32)
    notes = [f"{path.name}: {why}; fallback rows"]
    return FileResult(index, path.stem, ends, finalize(probs, config), 0, notes)


def onnxruntime_folds(bundle: ModelBundle, config: Config) -> list:
    """Per fold, mel tensor -> probabilities (numpy) through an onnxruntime session."""
    share_arena()
    sessions = [make_session(p, config.infer_threads) for p in bundle.paths]
    return [
        lambda mel, s=session: s.run([OUTPUT_NAME], {INPUT_NAME: mel.numpy()})[0]
        for session in sessions
    ]


def torch_folds(bundle: ModelBundle, config: Config) -> list:
    """Per fold, mel tensor -> probabilities (numpy) through the PyTorch model."""
    if not bundle.weights:
        raise FileNotFoundError(
            f"the torch engine needs fold<k>.pt in the models dataset, found none beside "
            f"{[p.name for p in bundle.paths]}. Fix: re-export with lib.export.export_run"
        )
    models = [load_torch_fold(p, bundle.config, len(bundle.classes)) for p in bundle.weights]
    return [lambda mel, m=model: m(mel).numpy() for model in models]


class Predictor:
    """One process's models (one callable per fold on the chosen engine) and the log-mel
    module, created where used."""

    def __init__(self, bundle: ModelBundle, config: Config, engine: str = ENGINE_ONNXRUNTIME):
        self.bundle, self.config, self.engine = bundle, config, engine
        make = torch_folds if engine == ENGINE_TORCH else onnxruntime_folds
        self.folds = make(bundle, config)
        self.log_mel = LogMel(bundle.config).eval()

    def predict_windows(self, windows: np.ndarray, folds: int) -> tuple[np.ndarray, float, float]:
        """(n, samples) -> mean probabilities of the first `folds` models (n, classes),
        features seconds, model seconds. The log-mel is computed once and fed to every fold."""
        size = max(1, self.config.infer_batch_size)
        out = np.zeros((len(windows), len(self.bundle.classes)), np.float32)
        features_s = model_s = 0.0
        for start in range(0, len(windows), size):
            tick = time.perf_counter()
            with torch.inference_mode():
                batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + size]))
                mel = self.log_mel(batch)  # (b, 1, n_mels, frames)
                tock = time.perf_counter()
                for fold in self.folds[:folds]:
                    out[start : start + size] += fold(mel)
            features_s += tock - tick
            model_s += time.perf_counter() - tock
        return out / max(folds, 1), features_s, model_s

    def predict_file(self, index: int, path: str | Path, folds: int) -> FileResult:
        """Rows for one soundscape; never raises (a failure gives fallback rows + a warning)."""
        path = Path(path)
        try:
            return self._predict_file(index, path, folds)
        except Exception as err:  # MemoryError, onnxruntime errors...: the run goes on
            why = f"prediction failed ({type(err).__name__}: {err})"
            return fallback_result(index, path, self.bundle, self.config, why)

    def _predict_file(self, index: int, path: Path, folds: int) -> FileResult:
        feats = self.bundle.config
        tick = time.perf_counter()
        decoded = decode_soundscape(path, feats.sample_rate)
        if decoded.wave is None:
            result = fallback_result(index, path, self.bundle, self.config, "no audio")
            result.warnings = decoded.warnings
            return result
        windows, ends = make_windows(
            decoded.wave, feats.sample_rate, feats.clip_seconds, feats.min_tail_seconds
        )  # (n, samples), (n,)
        decode_s = time.perf_counter() - tick
        silent = silent_windows(windows)
        probs = np.full((len(ends), len(self.bundle.classes)), np.nan, np.float32)
        sound = np.flatnonzero(~silent)
        features_s = model_s = 0.0
        if len(sound):  # (copying the windows only when some are silent)
            audible = windows[sound] if len(sound) < len(windows) else windows
            probs[sound], features_s, model_s = self.predict_windows(audible, folds)
        notes = list(decoded.warnings)
        if silent.any():
            notes.append(f"{path.name}: {int(silent.sum())} silent window(s) got fallback rows")
        bad = int(np.count_nonzero(~np.isfinite(probs[sound])))
        if bad:
            notes.append(f"{path.name}: {bad} non-finite model output(s) set to fallback")
        out = finalize(probs, self.config)
        return FileResult(index, path.stem, ends, out, folds, notes, decode_s, features_s, model_s)


# --- scheduling -----------------------------------------------------------------------------


@dataclass
class _Task:
    index: int
    path: Path
    folds: int = 0
    cost: float = 0.0  # projected worker-seconds (for the guard's in-flight total)
    attempts: int = 0  # pool crashes this file was in flight for


@dataclass
class RunStats:
    """What the run did, for the summary."""

    folds_per_file: dict[int, int] = field(default_factory=dict)  # folds -> files (0: fallback)
    fallback_files: dict[str, str] = field(default_factory=dict)  # file -> reason
    warnings: list[str] = field(default_factory=list)
    windows: int = 0
    model_windows: int = 0  # windows x folds actually run
    guard_log: list[str] = field(default_factory=list)


class Scheduler:
    """Feeds files to a runner under the deadline guard. Every file ends as exactly one
    FileResult passed to `emit` (model rows or fallback rows), whatever the workers do."""

    def __init__(
        self,
        paths,
        runner,
        guard: DeadlineGuard,
        bundle: ModelBundle,
        config: Config,
        emit,
        clock=time.time,
        started_at: float | None = None,
    ):
        self.queue = deque(_Task(k, Path(p)) for k, p in enumerate(paths))
        self.inflight: dict[Future, _Task] = {}
        self.runner, self.guard, self.bundle, self.config = runner, guard, bundle, config
        self.emit, self.clock = emit, clock
        self.started_at = clock() if started_at is None else started_at
        self.max_inflight = 1 if runner.workers == 1 else 2 * runner.workers
        self.stats, self.last_folds, self.total = RunStats(), guard.n_folds, len(self.queue)

    def elapsed(self) -> float:
        return self.clock() - self.started_at

    def run(self) -> RunStats:
        while self.queue or self.inflight:
            self._fill()
            if self.inflight:
                self._collect()
        return self.stats

    def _fill(self) -> None:
        """Submit while there is room; a file that was in flight when the pool died runs alone
        (so a second crash names it)."""
        while self.queue and len(self.inflight) < self.max_inflight:
            task = self.queue[0]
            suspects = any(t.attempts for t in self.inflight.values())
            if suspects or (task.attempts and self.inflight):
                return
            cost = sum(t.cost for t in self.inflight.values())
            folds = self.guard.choose_folds(self.elapsed(), len(self.queue), cost)
            self._log_decision(folds, task)
            if folds == 0:
                self._fallback_queue("time budget reached before this file")
                return
            self.queue.popleft()
            task.folds, task.cost = folds, self.guard.file_cost(folds)
            self.inflight[self.runner.submit(task.index, task.path, folds)] = task

    def _collect(self) -> None:
        timeout = max(self.guard.budget_s - self.elapsed(), 0.0)
        done, _ = wait(list(self.inflight), timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            self._abandon()
        for future in done:
            if future in self.inflight:  # a pool crash may have handled it already
                self._finish(future)

    def _finish(self, future: Future) -> None:
        task = self.inflight.pop(future)
        try:
            result = future.result()
        except BrokenProcessPool:
            self._crashed(task)
            return
        except Exception as err:  # e.g. a result that failed to pickle
            result = self._fallback(task, f"worker error ({type(err).__name__}: {err})")
        self.guard.observe(
            len(result.ends), result.folds, result.decode_s + result.features_s, result.model_s
        )
        self._emit(result)

    def _crashed(self, task: _Task) -> None:
        """A worker died (segfault, out of memory) and took the pool with it. Every file in
        flight is a suspect, re-run alone; one that kills a worker alone gets fallback rows."""
        suspects = sorted([task, *self.inflight.values()], key=lambda t: t.index)
        self.inflight.clear()
        for suspect in reversed(suspects):
            suspect.attempts += 1
            if suspect.attempts >= 2:
                self._emit(self._fallback(suspect, "a worker crashed on this file"))
            else:
                self.queue.appendleft(suspect)
        if self.runner.restarts >= MAX_POOL_RESTARTS:
            self._fallback_queue(f"worker pool failed {MAX_POOL_RESTARTS + 1} times")
            return
        LOG.warning("worker pool crashed with %d file(s) in flight; restarting", len(suspects))
        self.runner.restart()

    def _abandon(self) -> None:
        """Budget reached with files in flight: end the workers, fallback rows for the rest."""
        LOG.warning("time budget reached with %d file(s) in flight: stopping", len(self.inflight))
        self.runner.close(kill=True)
        for task in sorted(self.inflight.values(), key=lambda t: t.index):
            self._emit(self._fallback(task, "time budget reached while processing"))
        self.inflight.clear()
        self._fallback_queue("time budget reached before this file")

    def _fallback(self, task: _Task, why: str) -> FileResult:
        return fallback_result(task.index, task.path, self.bundle, self.config, why)

    def _fallback_queue(self, why: str) -> None:
        while self.queue:
            self._emit(self._fallback(self.queue.popleft(), why))

    def _emit(self, result: FileResult) -> None:
        stats = self.stats
        stats.folds_per_file[result.folds] = stats.folds_per_file.get(result.folds, 0) + 1
        stats.windows += len(result.ends)
        stats.model_windows += len(result.ends) * result.folds
        if result.folds == 0:
            stats.fallback_files[f"{result.stem}"] = "; ".join(result.warnings)
        for note in result.warnings:
            LOG.warning(note)
        stats.warnings.extend(result.warnings)
        self.emit(result)
        done = sum(stats.folds_per_file.values())
        if done == self.total or done % max(1, self.total // 10) == 0:
            LOG.info("%d/%d files, %.0f s elapsed", done, self.total, self.elapsed())

    def _log_decision(self, folds: int, task: _Task) -> None:
        if folds != self.last_folds:
            note = (
                f"deadline guard: from {task.path.name} ({self.total - len(self.queue)}/"
                f"{self.total} done, {self.elapsed() / 60:.1f} of "
                f"{self.guard.budget_s / 60:.1f} min) files use {folds} fold model(s)"
            )
            LOG.warning(note)
            self.stats.guard_log.append(note)
            self.last_folds = folds


# --- the submission -------------------------------------------------------------------------


class SubmissionWriter:
    """Streams rows to a temp file in file order (results arrive in any order), then renames
    (lib.atomic): no partial file ever sits at the final path, and memory holds only
    out-of-order results."""

    def __init__(self, path: str | Path, classes):
        self.target = AtomicTarget(path)
        self.path = self.target.path
        self.classes, self.buffer, self.next, self.rows = list(classes), {}, 0, 0
        self.handle = open(self.target.tmp, "w", newline="")  # noqa: SIM115 (closed in commit/discard)
        pd.DataFrame(columns=["row_id", *self.classes]).to_csv(self.handle, index=False)

    def add(self, result: FileResult) -> None:
        self.buffer[result.index] = result
        while self.next in self.buffer:
            self._write(self.buffer.pop(self.next))
            self.next += 1

    def _write(self, result: FileResult) -> None:
        frame = pd.DataFrame(result.probs, columns=self.classes)
        frame.insert(0, "row_id", [f"{result.stem}_{int(end)}" for end in result.ends])
        frame.to_csv(self.handle, header=False, index=False, float_format=FLOAT_FORMAT)
        self.rows += len(frame)

    def written(self) -> set[int]:
        return set(range(self.next)) | set(self.buffer)

    def commit(self, files: int) -> Path:
        if self.next != files or self.buffer:
            raise RuntimeError(f"submission incomplete: {self.next} of {files} files written")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return self.target.commit()

    def discard(self) -> None:
        self.handle.close()
        self.target.discard()


# --- the run --------------------------------------------------------------------------------


def make_runner(bundle: ModelBundle, config: Config, files: int, engine: str = ENGINE_ONNXRUNTIME):
    """A pool of config.infer_processes workers, or this process when one worker is enough;
    each makes its Predictor on `engine`."""
    if min(config.infer_processes, files) <= 1:
        return InlineRunner(Predictor, bundle, config.replace(infer_processes=1), engine)
    workers = min(config.infer_processes, files)
    config = config.replace(infer_processes=workers)
    return PoolRunner(workers, config.infer_threads, Predictor, bundle, config, engine)


def _rescue(writer: SubmissionWriter, paths, bundle: ModelBundle, config: Config, err) -> None:
    """Last resort after an unexpected error: fallback rows for every file not yet written."""
    LOG.error(
        "inference failed (%s: %s); fallback rows for the files left", type(err).__name__, err
    )
    for index, path in enumerate(paths):
        if index not in writer.written():
            writer.add(fallback_result(index, Path(path), bundle, config, f"run failed: {err}"))


def run_inference(
    models_dir: str | Path,
    soundscapes_dir: str | Path,
    out_path: str | Path,
    config: Config,
    *,
    started_at: float | None = None,
    pattern: str = "*.ogg",
    clock=time.time,
    engine: str | EngineChoice | None = None,
    engine_reason: str = "",
    onnxruntime_wheel: str | None = None,
) -> InferenceSummary:
    """Predict every `soundscapes_dir/pattern` file with every fold model in `models_dir` and
    write `out_path` (atomically). `config` gives the infer_* knobs, the time budget and the
    fallback; features come from the models' own config. `started_at` (a `clock()` value, e.g.
    lib.guard.budget_started_at()) is when the budget began. `engine`: "onnxruntime", "torch"
    (`engine_reason` says why) or None (onnxruntime when importable, else torch); onnxruntime
    that cannot create a session for the models falls back to torch (`choose_engine`; an
    EngineChoice it returned is used as is).
    `onnxruntime_wheel` (the wheel the install cell installed) goes into the summary."""
    begun = clock()
    bundle = load_bundle(models_dir)
    paths = sorted(Path(soundscapes_dir).glob(pattern))
    if not paths:
        LOG.warning("no %s files in %s: the submission has a header only", pattern, soundscapes_dir)
    config = _fit_cores(config)
    choice = choose_engine(bundle, engine, engine_reason)
    writer = SubmissionWriter(out_path, bundle.classes)
    runner, failed = None, False
    try:
        runner = make_runner(bundle, config, len(paths), choice.engine)
        folds = len(bundle.fold_paths(choice.engine))
        guard = DeadlineGuard(
            config.time_budget_minutes * 60, folds, runner.workers,
            expected_seconds=config.test_file_seconds,
        )  # fmt: skip
        start = begun if started_at is None else started_at
        scheduler = Scheduler(paths, runner, guard, bundle, config, writer.add, clock, start)
        stats = scheduler.run()
    except Exception as err:  # a bug must still leave a complete submission
        failed = True
        _rescue(writer, paths, bundle, config, err)
        stats = RunStats(warnings=[f"run failed: {err}"])
    finally:
        if runner is not None:
            runner.close(kill=failed)  # after a failure workers may still be busy: end them
    writer.commit(len(paths))
    summary = _summary(stats, writer, paths, runner, config, clock() - begun)
    return summary.with_engine(choice, onnxruntime_wheel)


def _fit_cores(config: Config) -> Config:
    """The config with processes x threads fitted to the cores (logged when reduced)."""
    processes, threads = plan_workers(config.infer_processes, config.infer_threads)
    if (processes, threads) != (config.infer_processes, config.infer_threads):
        LOG.warning(
            "%d core(s) available: %d process(es) x %d thread(s) instead of %d x %d",
            available_cores(),
            processes,
            threads,
            config.infer_processes,
            config.infer_threads,
        )
    return config.replace(infer_processes=processes, infer_threads=threads)


@dataclass
class InferenceSummary:
    """What a run did; the notebook prints it and saves `to_json()` as inference_summary.json,
    whose keys are the field names (users' scripts read them: keep the names)."""

    files: int
    rows: int
    seconds: float
    windows: int
    model_windows: int  # windows x folds actually run
    folds_per_file: dict[int, int]  # folds -> files, most folds first (0: fallback rows)
    fallback_files: dict[str, str]  # file stem -> reason
    guard: list[str]  # the deadline guard's decisions, as logged
    warnings: list[str]
    processes: int
    threads: int
    batch_size: int
    start_method: str  # "fork", "spawn" or "inline" (no pool)
    pool_restarts: int
    budget_minutes: float
    submission: str
    engine: str = ENGINE_ONNXRUNTIME  # "onnxruntime" or "torch"
    engine_reason: str = ""  # why not onnxruntime; "" when it was used
    python: str = platform.python_version()  # e.g. "3.13.0"
    onnxruntime_wheel: str | None = None  # the wheel the install cell installed, if any

    def with_engine(self, choice: EngineChoice, wheel: str | None) -> InferenceSummary:
        return replace(
            self, engine=choice.engine, engine_reason=choice.reason, onnxruntime_wheel=wheel
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def table(self) -> pd.DataFrame:
        """The run at a glance, one row per fact (the notebook displays it)."""
        engine = self.engine + (f" (fallback: {self.engine_reason})" if self.engine_reason else "")
        facts = {
            "soundscapes": self.files,
            "rows": self.rows,
            "seconds": self.seconds,
            "engine": engine,
            "python": self.python,
            "workers": f"{self.processes} process(es) x {self.threads} thread(s), "
            f"{self.start_method}, batch {self.batch_size}",
            "files per fold count (0: fallback rows)": self.folds_per_file,
            "deadline guard": "; ".join(self.guard) or "every file used every fold model",
            "fallback files": len(self.fallback_files),
            "warnings": len(self.warnings),
        }
        return pd.DataFrame({"value": [str(v) for v in facts.values()]}, index=list(facts))


def _summary(stats: RunStats, writer, paths, runner, config: Config, seconds: float):
    pooled = isinstance(runner, PoolRunner)
    return InferenceSummary(
        files=len(paths),
        rows=writer.rows,
        seconds=round(seconds, 2),
        windows=stats.windows,
        model_windows=stats.model_windows,
        folds_per_file=dict(sorted(stats.folds_per_file.items(), reverse=True)),
        fallback_files=stats.fallback_files,
        guard=stats.guard_log,
        warnings=stats.warnings,
        processes=runner.workers if runner is not None else 0,
        threads=config.infer_threads,
        batch_size=config.infer_batch_size,
        start_method=start_method() if pooled else "inline",
        pool_restarts=getattr(runner, "restarts", 0),
        budget_minutes=config.time_budget_minutes,
        submission=str(writer.path),
    )
