"""How inference uses the cores: how many workers and threads, their onnxruntime sessions, and
the runners that hand files to them (a forked pool, or this process alone).

Start method: FORK. In the built notebook the library is inlined into `__main__`, and a spawned
worker cannot import functions defined there (the facts sheet: AttributeError then
BrokenProcessPool). Fork is safe here because the parent holds no onnxruntime session and has
run no torch op when it forks: sessions and torch's thread settings are created in the worker
initializer. Elsewhere than Linux (no fork) spawn is used, which needs an importable `lib`.

A runner runs a "predictor": any object with `predict_file(index, path, folds)` that never
raises (lib.infer.Predictor). It is made where it runs, from `make_predictor(*args)`.

Engines: "onnxruntime" (the fold models as ONNX sessions) or "torch" (lib.infer_torch, the
fallback when onnxruntime cannot run). Whether onnxruntime can create a session for every fold is
probed in a short subprocess (`probe_sessions`), never in the parent: sessions inherited across
fork can crash the workers.

Nothing here imports onnxruntime at module level: the notebook inlines this module before its
install cell runs.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import torch

# --- cores ----------------------------------------------------------------------------------


def available_cores() -> int:
    """Cores this process may use: the CPU affinity, capped by a cgroup v2 CPU quota
    (containers often show the host's cores in os.cpu_count())."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(cores, 1)


def plan_workers(processes: int, threads: int, cores: int | None = None) -> tuple[int, int]:
    """(processes, threads) with processes * threads <= cores: oversubscribed onnxruntime
    threads spin against each other (2 x 2 on 2 cores ran ~45 % slower here)."""
    cores = available_cores() if cores is None else cores
    threads = max(1, min(int(threads), cores))
    processes = max(1, min(int(processes), cores // threads))
    return processes, threads


# --- sessions -------------------------------------------------------------------------------


def share_arena() -> None:
    """One CPU memory arena for every session of this process. The fold models run one after
    another, so their activations need not sit in five arenas: measured here, 5 effnet_b0
    sessions held 1.3 GB at batch 4 with their own arenas and 0.4 GB sharing one (0.23 GB at
    batch 1), at the same speed. Registering again in the same process is harmless."""
    import onnxruntime as ort

    info = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    ort.create_and_register_allocator(info, None)


def make_session(path: str | Path, threads: int, shared_arena: bool = True):
    """An onnxruntime CPU session: full graph optimisation at load (the file was saved at the
    portable EXTENDED level), `threads` intra-op threads, sequential execution; with
    `shared_arena`, the process's shared arena (call share_arena() first)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if shared_arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


ENGINE_ONNXRUNTIME = "onnxruntime"
ENGINE_TORCH = "torch"
ENGINES = (ENGINE_ONNXRUNTIME, ENGINE_TORCH)
PROBE_TIMEOUT_S = 300.0

# Run by `probe_sessions` in a fresh interpreter (the notebook's library lives in __main__, which
# a subprocess cannot import: the probe is self-contained). argv: input name, n_mels, frames,
# then the model files. Each session gets make_session's optimisation level and runs one batch.
_PROBE_CODE = """
import sys
import numpy as np
import onnxruntime as ort
name, n_mels, frames, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
for path in paths:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    out = session.run(None, {name: np.zeros((1, 1, n_mels, frames), np.float32)})[0]
    if out.shape[0] != 1 or not np.isfinite(out).all():
        sys.exit(f"{path}: output {out.shape} not one finite row per window")
"""


def onnxruntime_importable() -> str:
    """ "" when onnxruntime can be imported here, else why not (without importing it)."""
    try:
        found = find_spec("onnxruntime") is not None
    except (ImportError, ValueError) as err:
        return f"onnxruntime cannot be imported ({type(err).__name__}: {err})"
    return "" if found else "onnxruntime is not installed"


def probe_sessions(paths, input_name: str, n_mels: int, frames: int) -> str:
    """ "" when onnxruntime creates a session for every model file and runs one window through
    it, else why not (the error's last line). Runs in a subprocess, so the parent holds no
    session when the workers fork, and a crash (a corrupt file can segfault) ends only it."""
    args = [input_name, str(n_mels), str(frames), *map(str, paths)]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE, *args],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"onnxruntime session probe failed ({type(err).__name__}: {err})"
    if done.returncode == 0:
        return ""
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    last = lines[-1][-500:] if lines else f"exit {done.returncode}"
    return f"onnxruntime cannot run the models: {last}"


# --- runners --------------------------------------------------------------------------------

# The one piece of process-level state: each worker process's predictor, made by the pool's
# initializer (sessions cannot be pickled, and must not be inherited across fork).
_WORKER: dict = {}


def _init_worker(make_predictor: Callable, args: tuple, threads: int) -> None:
    torch.set_num_threads(threads)  # the log-mel's threads: no oversubscription
    _WORKER["predictor"] = make_predictor(*args)


def _work(index: int, path: str, folds: int):
    return _WORKER["predictor"].predict_file(index, path, folds)


def start_method() -> str:
    """fork where it exists (see the module docstring: notebooks), else spawn."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class InlineRunner:
    """processes == 1: files run here, one at a time; no pool, no fork."""

    def __init__(self, make_predictor: Callable, *args):
        self.workers, self.restarts = 1, 0
        self.predictor = make_predictor(*args)

    def submit(self, index: int, path: Path, folds: int) -> Future:
        future: Future = Future()
        future.set_result(self.predictor.predict_file(index, path, folds))
        return future

    def restart(self) -> None:
        self.restarts += 1

    def close(self, kill: bool = False) -> None:
        self.predictor = None


class PoolRunner:
    """A process pool of `workers`, each holding its own predictor (sessions made in the
    worker) and running torch with `threads` threads."""

    def __init__(self, workers: int, threads: int, make_predictor: Callable, *args):
        self.workers, self.threads, self.restarts = workers, threads, 0
        self.make_predictor, self.args = make_predictor, args
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context(start_method())
        initargs = (self.make_predictor, self.args, self.threads)
        return ProcessPoolExecutor(
            self.workers, context, initializer=_init_worker, initargs=initargs
        )

    def submit(self, index: int, path: Path, folds: int) -> Future:
        with warnings.catch_warnings():  # the workers fork at the first submit
            # Python >= 3.12 warns on fork from a threaded process (a Jupyter kernel always is):
            # the workers only run _work, never code that takes a lock held by those threads.
            warnings.filterwarnings("ignore", ".*use of fork\\(\\) may lead to deadlocks")
            return self.pool.submit(_work, index, str(path), folds)

    def restart(self) -> None:
        self.close(kill=True)
        self.restarts += 1
        self.pool = self._start()

    def close(self, kill: bool = False) -> None:
        """Shut the pool; with `kill`, end its workers now (deadline reached, pool broken)."""
        if kill and hasattr(self.pool, "kill_workers"):  # Python >= 3.14
            self.pool.kill_workers()
        elif kill:  # older: the executor's own process table
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.kill()
        self.pool.shutdown(wait=not kill, cancel_futures=True)
