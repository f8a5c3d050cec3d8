"""Offline inference: submission format, bad input, the deadline guard, workers, the notebook."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from conftest import ROOT, TINY_BACKBONE

import lib.infer
from lib.audio import window_ends
from lib.config import Config
from lib.export import export_run
from lib.guard import DeadlineGuard
from lib.infer import (
    FileResult,
    InferenceSummary,
    Predictor,
    Scheduler,
    SubmissionWriter,
    finalize,
    load_bundle,
    run_inference,
)
from lib.infer_workers import InlineRunner
from lib.model import build_model, save_checkpoint

TINY = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)
CLASSES = ["abethr1", "brodov1", "comfin", "yewgre1"]
RUN = Config(infer_processes=1, infer_threads=1, infer_batch_size=4)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A models dataset of 3 tiny folds, as lib.export.export_run writes it."""
    root = tmp_path_factory.mktemp("models")
    for fold in range(3):
        torch.manual_seed(fold)
        model = build_model(TINY, len(CLASSES), pretrained=False)
        save_checkpoint(root / "run" / f"fold{fold}" / "best.pt", model, TINY, CLASSES)
    export_run(root / "run", root / "models")
    return root / "models"


def tone(seconds: float, rate: int = 32000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """(samples, channels) float32: a wobbling tone in noise, different per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.3 * np.sin(2 * np.pi * (1500 + 400 * seed) * t + 3 * np.sin(2 * np.pi * 0.5 * t))
    wave = wave[:, None] + rng.normal(0, 0.02, (len(t), channels))
    return wave.astype(np.float32)


def write(path: Path, wave: np.ndarray, rate: int = 32000, subtype: str | None = None) -> Path:
    """Any channels/rate; ogg in 10 s chunks (one long vorbis write crashed libsndfile)."""
    fmt = {"ogg": ("OGG", "VORBIS"), "wav": ("WAV", subtype or "FLOAT")}[path.suffix[1:]]
    wave = wave if wave.ndim == 2 else wave[:, None]
    with sf.SoundFile(str(path), "w", rate, wave.shape[1], fmt[1], format=fmt[0]) as out:
        for start in range(0, len(wave), 10 * rate):
            out.write(wave[start : start + 10 * rate])
    return path


def soundscapes(folder: Path, seconds: list[float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, length in enumerate(seconds):
        write(folder / f"soundscape_{k:02d}.ogg", tone(length, seed=k))
    return folder


def species_values(frame: pd.DataFrame) -> np.ndarray:
    return frame.drop(columns="row_id").to_numpy(dtype=float)


# --- submission ------------------------------------------------------------------------------


def test_submission_format_and_row_ids(models, tmp_path):
    """600 s -> ends 5..600; 598 s -> also 120 rows (last window padded); files in name order."""
    test = tmp_path / "test_soundscapes"
    test.mkdir()
    write(test / "b_600.ogg", tone(600.0, seed=1))
    write(test / "a_598.ogg", tone(598.0, seed=2))
    out = tmp_path / "out" / "submission.csv"
    summary = run_inference(models, test, out, RUN)

    sub = pd.read_csv(out)
    assert list(sub.columns) == ["row_id", *CLASSES]
    ends = list(range(5, 605, 5))
    assert sub.row_id.tolist() == [f"a_598_{e}" for e in ends] + [f"b_600_{e}" for e in ends]
    values = species_values(sub)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= RUN.max_probability
    assert values.std() > 0  # model predictions, not fallback
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.csv"]  # temp renamed
    assert summary.files == 2 and summary.rows == 240
    assert summary.folds_per_file == {3: 2} and not summary.fallback_files


def test_no_soundscapes_gives_header_only(models, tmp_path):
    (tmp_path / "empty").mkdir()
    summary = run_inference(models, tmp_path / "empty", tmp_path / "s.csv", RUN)
    assert (tmp_path / "s.csv").read_text().strip() == ",".join(["row_id", *CLASSES])
    assert summary.rows == 0


def test_summary_json_keeps_its_keys(models, tmp_path):
    """inference_summary.json's keys are read by users' scripts: the same names, the same order."""
    (tmp_path / "empty").mkdir()
    summary = run_inference(models, tmp_path / "empty", tmp_path / "s.csv", RUN)
    assert isinstance(summary, InferenceSummary)
    saved = json.loads(summary.to_json())
    assert list(saved) == [
        "files", "rows", "seconds", "windows", "model_windows", "folds_per_file",
        "fallback_files", "guard", "warnings", "processes", "threads", "batch_size",
        "start_method", "pool_restarts", "budget_minutes", "submission",
        "engine", "engine_reason", "python", "onnxruntime_wheel",
    ]  # fmt: skip
    assert saved["engine"] == "onnxruntime" and saved["engine_reason"] == ""
    assert saved["python"] == platform.python_version() and saved["onnxruntime_wheel"] is None
    assert saved["submission"] == str(tmp_path / "s.csv") and saved["start_method"] == "inline"
    assert summary.to_json().endswith("}\n") and saved == json.loads(json.dumps(saved))


def test_finalize_makes_values_valid():
    config = Config(fallback_probability=0.01, max_probability=0.999)
    probs = np.array([[np.nan, np.inf, -np.inf, -0.5, 1.0, 0.3]], np.float32)
    np.testing.assert_allclose(finalize(probs, config), [[0.01, 0.999, 0, 0, 0.999, 0.3]])


def test_writer_orders_results_whatever_the_arrival(tmp_path):
    results = [
        FileResult(k, f"s{k}", np.array([5, 10]), np.full((2, 2), k / 10, np.float32), 1)
        for k in range(5)
    ]
    writer = SubmissionWriter(tmp_path / "sub.csv", ["x", "y"])
    for k in (3, 1, 4, 0, 2):
        writer.add(results[k])
    writer.commit(5)
    rows = pd.read_csv(tmp_path / "sub.csv").row_id.tolist()
    assert rows == [f"s{k}_{e}" for k in range(5) for e in (5, 10)]


# --- bad input -------------------------------------------------------------------------------


def bad_inputs(folder: Path) -> dict[str, int]:
    """Every kind of bad input the issue names -> expected rows."""
    folder.mkdir()
    (folder / "empty.ogg").write_bytes(b"")
    (folder / "garbage.ogg").write_bytes(np.random.default_rng(0).bytes(20000))
    good = write(folder / "tmp_full.ogg", tone(30.0)).read_bytes()
    (folder / "tmp_full.ogg").unlink()
    (folder / "truncated.ogg").write_bytes(good[: len(good) // 2])
    write(folder / "stereo_44k.ogg", tone(12.0, 44100, channels=2), 44100)
    write(folder / "rate_48k.ogg", tone(10.0, 48000), 48000)
    write(folder / "short.ogg", tone(3.0))
    write(folder / "odd_length.ogg", tone(12.3))
    write(folder / "silence.ogg", np.zeros((10 * 32000, 1), np.float32))
    nan = tone(10.0)
    nan[::1000] = np.nan
    write(folder / "nan.wav", nan)
    huge = tone(10.0)
    huge[5000:6000] = 1e30
    write(folder / "huge.wav", huge)
    half = sf.info(str(folder / "truncated.ogg")).duration
    return {
        "empty": 120,
        "garbage": 120,
        "truncated": len(window_ends(half * 32000)),
        "stereo_44k": 3,
        "rate_48k": 2,
        "short": 1,
        "odd_length": 3,
        "silence": 2,
        "nan": 2,
        "huge": 2,
    }


def test_bad_input_never_stops_the_run(models, tmp_path):
    expected = bad_inputs(tmp_path / "test")
    config = RUN.replace(infer_processes=2, fallback_probability=0.0)
    summary = run_inference(models, tmp_path / "test", tmp_path / "s.csv", config, pattern="*.*")

    sub = pd.read_csv(tmp_path / "s.csv")
    stems = sub.row_id.str.rsplit("_", n=1).str[0]
    assert stems.value_counts().to_dict() == expected
    values = species_values(sub)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() < 1
    for stem in expected:  # every file named in a warning
        assert any(note.startswith(f"{stem}.") for note in summary.warnings), stem
    assert set(summary.fallback_files) == {"empty", "garbage"}
    assert (species_values(sub[stems == "silence"]) == 0).all()  # silence -> fallback rows
    for stem in ("nan", "huge", "stereo_44k", "rate_48k", "short", "truncated"):
        assert species_values(sub[stems == stem]).std() > 0, stem  # real predictions


def test_an_unreadable_file_gets_the_years_rows(models, tmp_path):
    """No header to count windows from: the fallback rows follow the year's test-file length
    (BirdCLEF 2025-26: 1-minute files, 12 rows), not 2023's 10 minutes."""
    folder = tmp_path / "test"
    folder.mkdir()
    (folder / "garbage.ogg").write_bytes(np.random.default_rng(0).bytes(20000))
    for seconds, rows in ((60, 12), (240, 48), (600, 120)):
        out = tmp_path / f"s{seconds}.csv"
        run_inference(models, folder, out, RUN.replace(test_file_seconds=seconds))
        sub = pd.read_csv(out)
        assert sub.row_id.tolist() == [f"garbage_{5 * k}" for k in range(1, rows + 1)]


# --- workers ---------------------------------------------------------------------------------


def test_multiprocessing_equals_single_process(models, tmp_path):
    test = soundscapes(tmp_path / "test", [20.0, 7.0, 33.0, 12.5, 25.0])
    one = run_inference(models, test, tmp_path / "one.csv", RUN)
    two = run_inference(models, test, tmp_path / "two.csv", RUN.replace(infer_processes=2))
    assert one.start_method == "inline" and two.start_method == "fork"
    assert two.processes == 2
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    run_inference(models, test, tmp_path / "b1.csv", RUN.replace(infer_batch_size=1))
    a, b = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "b1.csv")
    np.testing.assert_allclose(species_values(a), species_values(b), atol=1e-5)


def test_worker_crash_gives_fallback_for_that_file_only(models, tmp_path, monkeypatch):
    """A file that kills its worker (segfault-like) is isolated; the others are unaffected."""
    test = soundscapes(tmp_path / "test", [10.0, 10.0, 10.0, 10.0])
    clean = run_inference(models, test, tmp_path / "clean.csv", RUN)
    (test / "soundscape_01.ogg").rename(test / "crash.ogg")
    parent, decode = os.getpid(), lib.infer.decode_soundscape

    def crashing_decode(path, rate):  # inherited by the forked workers
        if Path(path).name == "crash.ogg" and os.getpid() != parent:
            os._exit(3)
        return decode(path, rate)

    monkeypatch.setattr(lib.infer, "decode_soundscape", crashing_decode)
    summary = run_inference(models, test, tmp_path / "s.csv", RUN.replace(infer_processes=2))
    sub = pd.read_csv(tmp_path / "s.csv").set_index("row_id")
    ref = pd.read_csv(tmp_path / "clean.csv").set_index("row_id")
    assert list(summary.fallback_files) == ["crash"]
    assert "worker crashed" in summary.fallback_files["crash"]
    assert (sub.loc[[f"crash_{e}" for e in (5, 10)]].to_numpy() == 0).all()
    others = ref.index[~ref.index.str.startswith("soundscape_01")]
    pd.testing.assert_frame_equal(sub.loc[others], ref.loc[others])
    assert summary.pool_restarts == 2 and clean.rows == 8


# --- deadline guard --------------------------------------------------------------------------


class SimulatedRunner(InlineRunner):
    """Runs files for real (on `engine`), on a simulated clock: a file 'takes'
    windows x (0.1 + fold_s x folds) s, the rates the workers would measure."""

    def __init__(self, bundle, config, engine: str = "onnxruntime", fold_s: float = 1.0):
        super().__init__(Predictor, bundle, config, engine)
        self.now, self.fold_s = 0.0, fold_s

    def clock(self) -> float:
        return self.now

    def submit(self, index, path, folds):
        future = super().submit(index, path, folds)
        result = future.result()
        windows = len(result.ends)
        model_s = windows * folds * self.fold_s
        result.decode_s, result.features_s, result.model_s = 0.1 * windows, 0.0, model_s
        self.now += 0.1 * windows + model_s
        return future


def test_guard_tiny_budget_fewer_folds_then_fallback(models, tmp_path):
    """12 files of 2 windows, 3 folds (6.2 s each), budget 20 s: 3 folds, then 1, then none."""
    test = soundscapes(tmp_path / "test", [10.0] * 12)
    bundle = load_bundle(models)
    runner = SimulatedRunner(bundle, RUN)
    guard = DeadlineGuard(budget_s=20.0, n_folds=3, workers=1)
    writer = SubmissionWriter(tmp_path / "s.csv", bundle.classes)
    paths = sorted(test.glob("*.ogg"))
    stats = Scheduler(paths, runner, guard, bundle, RUN, writer.add, runner.clock, 0.0).run()
    writer.commit(len(paths))

    assert stats.folds_per_file == {3: 1, 1: 6, 0: 5}
    assert len(stats.guard_log) == 2 and "1 fold" in stats.guard_log[0]
    sub = pd.read_csv(tmp_path / "s.csv")
    assert len(sub) == 24 and np.isfinite(species_values(sub)).all()
    assert (species_values(sub.iloc[14:]) == RUN.fallback_probability).all()  # files 7..11
    assert species_values(sub.iloc[:14]).std() > 0


def test_guard_fits_fewer_folds_at_the_slower_engines_rate(models, tmp_path):
    """4 files of 2 windows, 3 folds, budget 26 s. onnxruntime at 1 s per window and fold: 6.2 s
    a file, all fit with 3 folds. torch 3x slower (18.2 s a file at 3 folds): after the first
    file the guard drops to 1 fold, then fallback rows."""
    test = soundscapes(tmp_path / "test", [10.0] * 4)
    bundle, paths = load_bundle(models), sorted(test.glob("*.ogg"))
    per_engine = {}
    for engine, fold_s in (("onnxruntime", 1.0), ("torch", 3.0)):
        runner = SimulatedRunner(bundle, RUN, engine, fold_s)
        guard = DeadlineGuard(budget_s=26.0, n_folds=3, workers=1)
        writer = SubmissionWriter(tmp_path / f"{engine}.csv", bundle.classes)
        scheduler = Scheduler(paths, runner, guard, bundle, RUN, writer.add, runner.clock, 0.0)
        per_engine[engine] = scheduler.run().folds_per_file
        writer.commit(len(paths))
        assert runner.predictor.engine == engine
    assert per_engine == {"onnxruntime": {3: 4}, "torch": {3: 1, 1: 1, 0: 2}}


# --- engines ---------------------------------------------------------------------------------


def assert_valid_submission(path: Path, files: int, windows: int) -> np.ndarray:
    sub = pd.read_csv(path)
    assert list(sub.columns) == ["row_id", *CLASSES] and len(sub) == windows
    assert sub.row_id.str.rsplit("_", n=1).str[0].nunique() == files
    values = species_values(sub)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() < 1.0
    return values


def test_torch_engine_writes_the_model_based_submission(models, tmp_path):
    test = soundscapes(tmp_path / "test", [10.0, 22.0])
    ort_summary = run_inference(models, test, tmp_path / "ort.csv", RUN, engine="onnxruntime")
    summary = run_inference(
        models, test, tmp_path / "torch.csv", RUN, engine="torch", engine_reason="no cp313 wheel"
    )
    values = assert_valid_submission(tmp_path / "torch.csv", 2, 2 + 5)
    assert values.std() > 0 and summary.folds_per_file == {3: 2}  # every fold, not fallback
    np.testing.assert_allclose(values, species_values(pd.read_csv(tmp_path / "ort.csv")), atol=2e-4)
    assert (summary.engine, summary.engine_reason) == ("torch", "no cp313 wheel")
    assert (ort_summary.engine, ort_summary.engine_reason) == ("onnxruntime", "")
    saved = json.loads(summary.to_json())
    assert saved["engine"] == "torch" and saved["python"] == platform.python_version()


def test_a_session_that_cannot_be_created_falls_back_to_torch(models, tmp_path):
    broken = tmp_path / "models"
    shutil.copytree(models, broken)
    (broken / "fold1.onnx").write_bytes(b"not an onnx model")  # a truncated upload, say
    test = soundscapes(tmp_path / "test", [10.0, 15.0])
    summary = run_inference(broken, test, tmp_path / "s.csv", RUN.replace(infer_processes=2))
    assert summary.engine == "torch" and "fold1.onnx" in summary.engine_reason
    assert summary.folds_per_file == {3: 2} and summary.processes == 2  # forked workers, torch
    assert species_values(pd.read_csv(tmp_path / "s.csv")).std() > 0


def test_without_onnxruntime_the_default_engine_is_torch(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the install cell failed
    test = soundscapes(tmp_path / "test", [10.0])
    summary = run_inference(models, test, tmp_path / "s.csv", RUN)
    assert summary.engine == "torch" and "not installed" in summary.engine_reason
    assert_valid_submission(tmp_path / "s.csv", 1, 2)


def test_zero_budget_still_writes_complete_submission(models, tmp_path):
    test = soundscapes(tmp_path / "test", [10.0, 15.0])
    summary = run_inference(models, test, tmp_path / "s.csv", RUN.replace(time_budget_minutes=0))
    assert summary.folds_per_file == {0: 2} and len(pd.read_csv(tmp_path / "s.csv")) == 5
    assert "0 fold" in summary.guard[0]


def test_deadline_stops_a_hung_worker(models, tmp_path, monkeypatch):
    """A file still running at the budget's end is abandoned (workers killed), not waited for."""
    test = soundscapes(tmp_path / "test", [10.0, 10.0, 10.0])
    parent, decode = os.getpid(), lib.infer.decode_soundscape

    def slow_decode(path, rate):
        if Path(path).name == "soundscape_01.ogg" and os.getpid() != parent:
            time.sleep(120)
        return decode(path, rate)

    monkeypatch.setattr(lib.infer, "decode_soundscape", slow_decode)
    config = RUN.replace(infer_processes=2, time_budget_minutes=0.15)  # 9 s
    tick = time.monotonic()
    summary = run_inference(models, test, tmp_path / "s.csv", config)
    assert time.monotonic() - tick < 30
    assert "time budget reached" in summary.fallback_files["soundscape_01"]
    assert summary.folds_per_file[3] == 2 and len(pd.read_csv(tmp_path / "s.csv")) == 6


def test_unexpected_error_still_writes_complete_submission(models, tmp_path, monkeypatch):
    test = soundscapes(tmp_path / "test", [10.0, 15.0])

    def broken_run(self):
        self.emit(self.runner.submit(0, self.queue[0].path, 3).result())  # one file done
        raise RuntimeError("boom")

    monkeypatch.setattr(Scheduler, "run", broken_run)
    summary = run_inference(models, test, tmp_path / "s.csv", RUN)
    sub = pd.read_csv(tmp_path / "s.csv")
    assert len(sub) == 5 and summary.warnings == ["run failed: boom"]
    assert species_values(sub.iloc[:2]).std() > 0  # the finished file kept its predictions
    assert (species_values(sub.iloc[2:]) == 0).all()  # the rest: fallback rows


# --- the notebook: library code in __main__, workers forked --------------------------------


def inline_modules(names: list[str]) -> list[str]:
    """The library modules (and their dependencies) as the builder inlines them into one cell:
    in the notebook every function lives in __main__, as the real build makes it."""
    from workbench.inline import inline_library

    return [inline_library(ROOT / "lib", names)]


def execute(cells: list[str], cwd: Path, env: dict, timeout: int = 300):
    """Run code cells in a fresh Jupyter kernel of this Python (nbclient)."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    spec_dir = cwd / "kernels" / "test-py"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "language": "python", "display_name": "test"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(cwd / "kernels")])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    km = KernelManager(kernel_name="test-py", kernel_spec_manager=specs)
    client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}})
    client.execute(env={**os.environ, **env}, cwd=str(cwd))
    return nb


def test_notebook_workers_run_code_defined_in_main(models, tmp_path):
    """The built notebook's situation: run_inference and its worker function live in
    __main__ (which a spawned worker cannot import); the forked pool must still run them."""
    test = soundscapes(tmp_path / "test", [10.0, 20.0, 15.0])
    run_inference(models, test, tmp_path / "ref.csv", RUN)
    modules = ["config", "atomic", "audio", "features", "guard", "infer_workers"]
    modules += ["models_dataset", "infer"]
    script = f"""
assert run_inference.__module__ == "__main__" and _work.__module__ == "__main__"
summary = run_inference({str(models)!r}, {str(test)!r}, {str(tmp_path / "nb.csv")!r},
                        Config(infer_processes=2, infer_threads=1, infer_batch_size=4))
assert summary.start_method == "fork" and summary.processes == 2, summary
assert summary.folds_per_file == {{3: 3}}, summary
"""
    execute([*inline_modules(modules), script], tmp_path, {"PYTHONPATH": ""})
    assert (tmp_path / "nb.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_built_inference_notebook_runs(models, tmp_path):
    """kernels/infer.py as build_kernels.py builds it, on a Kaggle-like input layout."""
    from lib.paths import MODELS_DATASET_SLUG
    from workbench.inline import build_notebook

    inputs = tmp_path / "input"
    soundscapes(inputs / "birdclef-2023" / "test_soundscapes", [10.0, 12.0, 600.0])
    (inputs / MODELS_DATASET_SLUG).symlink_to(models)
    nb = build_notebook(ROOT / "kernels" / "infer.py", ROOT / "lib")
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not any("from lib" in c for c in cells)
    env = {
        "KAGGLE_INPUT_DIR": str(inputs),
        "KAGGLE_WORKING_DIR": str(tmp_path / "working"),
        "BIRDCLEF_CONFIG": json.dumps({"infer_processes": 2}),
        "PYTHONPATH": "",
    }
    ran = execute(cells, tmp_path, env)
    printed = "".join(o.get("text", "") for c in ran.cells for o in c.get("outputs", []))
    assert "engine: onnxruntime 1.32.0 (already installed)\n" in printed  # the host has it
    sub = pd.read_csv(tmp_path / "working" / "submission.csv")
    assert len(sub) == 2 + 3 + 120 and list(sub.columns) == ["row_id", *CLASSES]
    summary = json.loads((tmp_path / "working" / "inference_summary.json").read_text())
    assert summary["start_method"] == "fork" and summary["folds_per_file"] == {"3": 3}
    assert summary["engine"] == "onnxruntime" and summary["onnxruntime_wheel"] is None
