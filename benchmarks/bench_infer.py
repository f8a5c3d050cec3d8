"""Inference speed: PyTorch eager vs onnxruntime vs the shipped pipeline, same windows, 5 folds.

Run: `python benchmarks/bench_infer.py` (8-13 minutes on this shared 2-core machine). Five
efficientnet_b0 SED fold models (random weights, 264 classes, 256 x 501 log-mel) are exported
with lib.export; the same soundscape windows then go through
  (a) PyTorch eager, one process, all threads, its best batch size (log-mel precomputed),
  (b) onnxruntime, one process, all threads, its best batch size (log-mel precomputed),
  (c) the shipped pipeline end to end: lib.infer.run_inference (decode + log-mel + every fold,
      forked workers) with the default config fitted to this machine's cores,
each in a fresh Python process (like the notebook's kernel; no runtime's thread pool spins
beside another's), interleaved over rounds; medians reported, best rounds too (the machine is
shared). Also measured: processes x threads x batch for (c), the log-mel inside vs outside the
graph, and OpenVINO fp32 when it is installed. Rates are model-windows per second (one window
through one fold model). The last line reads `end-to-end vs eager: <ratio>x` (medians).
Figures go into benchmarks/RESULTS.md.

`--engines` measures only the two engines of the inference notebook (about 3 minutes here): the
torch fallback (lib.infer_torch, fold<k>.pt) beside onnxruntime (fold<k>.onnx), both through the
shipped lib.infer.Predictor, one process and one thread each (a core: what each of Kaggle's 4
workers gets), the same batch (the config's), interleaved rounds in fresh processes; then it
projects the hidden test on 4 cores and says how many folds fit in 120 minutes per engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.audio import load_audio, make_windows, write_audio  # noqa: E402
from lib.config import Config  # noqa: E402
from lib.export import ClipProbabilities, export_run  # noqa: E402
from lib.features import LogMel  # noqa: E402
from lib.infer_workers import available_cores, make_session, plan_workers, share_arena  # noqa: E402
from lib.model import build_model, model_from_checkpoint, save_checkpoint  # noqa: E402

HIDDEN_TEST_WINDOWS = 24_000
CLASSES = [f"sp{k:03d}" for k in range(264)]


# --- setup -----------------------------------------------------------------------------------


def make_models(root: Path, folds: int, config: Config) -> Path:
    """`folds` random-weight effnet_b0 checkpoints in root/run, exported to root/models."""
    for fold in range(folds):
        torch.manual_seed(fold)
        model = build_model(config, len(CLASSES), pretrained=False).eval()
        save_checkpoint(root / "run" / f"fold{fold}" / "best.pt", model, config, CLASSES)
    export_run(root / "run", root / "models")
    return root / "models"


def make_soundscapes(folder: Path, files: int, seconds: float, config: Config) -> Path:
    """Ogg soundscapes: calls (chirps) over noise, different per file."""
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * config.sample_rate)) / config.sample_rate
    for k in range(files):
        rng = np.random.default_rng(k)
        chirp = np.sin(2 * np.pi * (1500 + 700 * k) * t + 40 * np.sin(2 * np.pi * 0.3 * t))
        wave = 0.2 * chirp * (t % (3 + k) < 1.5) + rng.normal(0, 0.02, t.shape)
        write_audio(folder / f"soundscape_{k:03d}.ogg", wave.astype(np.float32))
    return folder


def load_windows(folder: Path, config: Config) -> np.ndarray:
    """All windows (n, samples) in file order: the submission's row order."""
    waves = [load_audio(p, config.sample_rate) for p in sorted(folder.iterdir())]
    return np.concatenate([make_windows(w, config.sample_rate)[0] for w in waves])


# --- (a) and (b): one runtime in a fresh process -----------------------------------------------


def runtime_child(spec: dict) -> dict:
    """Time every window of root/mel.npy through `folds` models, for each batch size (median
    of `repeats` passes after a warm-up). Saves the last pass's mean probabilities."""
    peak, stop = [0.0], threading.Event()
    threading.Thread(target=sample_memory, args=(peak, stop), daemon=True).start()
    root, threads = Path(spec["root"]), spec["threads"]
    mel = np.load(root / "mel.npy")[: spec["windows"]]  # (n, 1, 256, 501)
    torch.set_num_threads(threads)
    if spec["runtime"] == "eager":
        models = [
            ClipProbabilities(model_from_checkpoint(root / "run" / f"fold{k}" / "best.pt")[0])
            for k in range(spec["folds"])
        ]
        run = [lambda x, m=m: m(torch.from_numpy(x)).numpy() for m in models]
    else:
        share_arena()
        sessions = [
            make_session(root / "models" / f"fold{k}.onnx", threads) for k in range(spec["folds"])
        ]
        run = [lambda x, s=s: s.run(["probs"], {"mel": x})[0] for s in sessions]
    seconds = {}
    with torch.inference_mode():
        for batch in spec["batches"]:
            for fn in run:
                fn(mel[:batch])  # warm-up: a new shape costs a one-off setup in both runtimes
            times = [one_pass(run, mel, batch) for _ in range(spec["repeats"])]
            seconds[batch] = statistics.median(t for t, _ in times)
    if spec.get("save"):
        np.save(spec["save"], times[-1][1])
    stop.set()
    return {"seconds": seconds, "model_windows": len(mel) * len(run), "peak_mb": peak[0]}


def one_pass(run, mel: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    out = np.zeros((len(mel), len(CLASSES)), np.float32)
    start = time.perf_counter()
    for fn in run:
        for k in range(0, len(mel), batch):
            out[k : k + batch] += fn(mel[k : k + batch])
    return time.perf_counter() - start, out / len(run)


# --- (c): the shipped pipeline in a fresh process -----------------------------------------------


def e2e_child(spec: dict) -> dict:
    """lib.infer.run_inference as the notebook calls it, with a memory probe."""
    from lib.infer import run_inference

    config = Config(
        infer_processes=spec["processes"],
        infer_threads=spec["threads"],
        infer_batch_size=spec["batch"],
    )
    peak, stop = [0.0], threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(peak, stop), daemon=True)
    sampler.start()
    summary = run_inference(spec["models"], spec["test"], spec["out"], config)
    stop.set()
    sampler.join()
    return {
        "seconds": summary.seconds,
        "model_windows": summary.model_windows,
        "processes": summary.processes,
        "peak_mb": peak[0],
    }


def sample_memory(peak: list, stop: threading.Event) -> None:
    """Peak of the summed proportional set size (shared pages split) of this process tree."""
    import psutil

    me = psutil.Process()
    while not stop.wait(1.0):  # smaps reads cost CPU: sample sparsely
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_full_info().pss
            except (psutil.Error, AttributeError):
                continue
        peak[0] = max(peak[0], total / 2**20)


# --- --engines: the torch fallback beside onnxruntime -----------------------------------------


def engine_child(spec: dict) -> dict:
    """One engine through lib.infer.Predictor on one thread: seconds of log-mel and of fold
    models for the windows in root/windows.npy (after a warm-up), and the probabilities."""
    from lib.infer import Predictor, load_bundle

    torch.set_num_threads(1)
    root = Path(spec["root"])
    config = Config(infer_processes=1, infer_threads=1, infer_batch_size=spec["batch"])
    predictor = Predictor(load_bundle(root / "models"), config, spec["engine"])
    windows = np.load(root / "windows.npy")
    folds = len(predictor.folds)
    predictor.predict_windows(windows[:2], folds)  # warm-up: first-call setup in both engines
    probs, features_s, model_s = predictor.predict_windows(windows, folds)
    np.save(root / f"{spec['engine']}.npy", probs)
    return {"windows": len(windows), "folds": folds, "features_s": features_s, "model_s": model_s}


def folds_that_fit(features_s: float, fold_s: float, cores: int, budget_min: float, folds: int):
    """(folds that fit the budget for HIDDEN_TEST_WINDOWS on `cores` one-thread workers, minutes
    for each fold count 1..folds): per window, one log-mel plus one model call per fold."""
    minutes = [
        HIDDEN_TEST_WINDOWS * (features_s + k * fold_s) / cores / 60 for k in range(1, folds + 1)
    ]
    fit = max((k for k, m in enumerate(minutes, 1) if m <= budget_min), default=0)
    return fit, minutes


def engines(args) -> None:
    """The --engines report: rates per core, their ratio within this run, the projection."""
    config = Config(pretrained=False)  # efficientnet_b0, 256 mels x 501 frames
    batch = config.infer_batch_size
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as name:
        root = Path(name)
        make_models(root, args.engine_folds, config)
        test = make_soundscapes(root / "test", 1, args.engine_windows * 5.0, config)
        np.save(root / "windows.npy", load_windows(test, config)[: args.engine_windows])
        got = {"onnxruntime": [], "torch": []}
        for _ in range(args.rounds):  # interleaved: both see the same machine load
            for engine in got:
                spec = {"root": str(root), "engine": engine, "batch": batch}
                got[engine].append(child("engine", spec))
        diff = float(np.abs(np.load(root / "torch.npy") - np.load(root / "onnxruntime.npy")).max())
    print(
        f"engines: {args.engine_windows} windows x {args.engine_folds} folds of efficientnet_b0 "
        f"(256 mels, random weights), 1 thread, batch {batch}, {args.rounds} interleaved rounds; "
        f"max |torch - onnxruntime| {diff:.1e}"
    )
    rates = {}
    for engine, runs in got.items():
        fold_s = statistics.median(r["model_s"] / (r["windows"] * r["folds"]) for r in runs)
        features_s = statistics.median(r["features_s"] / r["windows"] for r in runs)
        rates[engine] = (features_s, fold_s)
        print(
            f"  {engine:11s} {1 / fold_s:6.2f} model-windows/s per core ({1000 * fold_s:.0f} ms "
            f"per window and fold; log-mel {1000 * features_s:.1f} ms per window)"
        )
    ratio = rates["torch"][1] / rates["onnxruntime"][1]
    print(f"  torch / onnxruntime time per model-window: {ratio:.2f}x (medians, same run)")
    for engine, (features_s, fold_s) in rates.items():
        fit, minutes = folds_that_fit(features_s, fold_s, 4, 120.0, 5)
        listed = ", ".join(f"{k} fold(s) {m:.0f} min" for k, m in enumerate(minutes, 1))
        print(
            f"  Kaggle 4 cores, {HIDDEN_TEST_WINDOWS} windows, at this machine's rate: {engine}: "
            f"{listed}; {fit} fold(s) fit in 120 min"
        )


def child(kind: str, spec: dict) -> dict:
    """Run `kind` ("runtime" or "e2e") in a fresh interpreter; its JSON result."""
    command = [sys.executable, __file__, "--child", kind, json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def e2e(models: Path, test: Path, out: Path, processes: int, threads: int, batch: int) -> dict:
    spec = {
        "models": str(models),
        "test": str(test),
        "out": str(out),
        "processes": processes,
        "threads": threads,
        "batch": batch,
    }
    return child("e2e", spec)


def read_submission(path: Path) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(path).drop(columns="row_id").to_numpy(np.float32)


# --- the log-mel inside the graph (measurement only) -------------------------------------------


class GraphLogMel(nn.Module):
    """lib.features.LogMel in ops the ONNX exporter takes (real-valued STFT, opset 17), only to
    measure the alternative; its parity with LogMel + model is printed."""

    def __init__(self, config: Config):
        super().__init__()
        self.ref = LogMel(config)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        ref, half = self.ref, self.ref.n_fft // 2
        padded = F.pad(wave, (half, half))  # = center=True, pad_mode="constant"
        spec = torch.stft(
            padded, ref.n_fft, ref.hop_length, window=ref.window, center=False, return_complex=False
        )  # (b, bins, frames, 2)
        mel = torch.matmul(ref.mel_filters, spec.pow(2).sum(-1))  # (b, n_mels, frames)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        db = torch.maximum(db - db.amax(dim=(1, 2), keepdim=True), torch.full_like(db, -ref.top_db))
        return ((db + ref.top_db) / ref.top_db).unsqueeze(1)


def export_mel_in_graph(model: nn.Module, root: Path, windows: np.ndarray, config) -> Path:
    """wave (b, samples) -> probs, optimised offline like lib.export's models."""
    import onnxruntime as ort

    module = nn.Sequential(GraphLogMel(config), model).eval()
    raw, out = root / "mel_in_graph.raw.onnx", root / "mel_in_graph.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.from_numpy(windows[:2]),),
            str(raw),
            dynamo=False,
            opset_version=17,
            input_names=["wave"],
            output_names=["probs"],
            dynamic_axes={"wave": {0: "b"}, "probs": {0: "b"}},
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    return out


def mel_in_graph(root: Path, windows: np.ndarray, config: Config) -> dict:
    """ms per window on 1 thread, interleaved window by window: torch LogMel, the model alone,
    and log-mel + model in one graph."""
    model = ClipProbabilities(model_from_checkpoint(root / "run" / "fold0" / "best.pt")[0])
    fused = make_session(export_mel_in_graph(model, root, windows, config), 1, False)
    plain = make_session(root / "models" / "fold0.onnx", 1, False)
    log_mel, threads = LogMel(config), torch.get_num_threads()
    torch.set_num_threads(1)
    times = {"mel": [], "model": [], "fused": [], "diff": []}
    with torch.inference_mode():
        for _ in range(3):
            for k in range(len(windows)):
                wave = windows[k : k + 1]
                tick = time.perf_counter()
                mel = log_mel(torch.from_numpy(wave)).numpy()
                tock = time.perf_counter()
                apart = plain.run(None, {"mel": mel})[0]
                tack = time.perf_counter()
                inside = fused.run(None, {"wave": wave})[0]
                times["fused"].append(time.perf_counter() - tack)
                times["mel"].append(tock - tick)
                times["model"].append(tack - tock)
                times["diff"].append(float(np.abs(inside - apart).max()))
    torch.set_num_threads(threads)
    ms = {k: 1000 * statistics.median(times[k]) for k in ("mel", "model", "fused")}
    return ms | {"max_abs_diff": max(times["diff"])}


def openvino_vs_ort(root: Path, mel: np.ndarray, folds: int):
    """OpenVINO fp32 (if installed) vs onnxruntime, 1 thread, batch 1, interleaved per fold:
    (OpenVINO s, onnxruntime s, max |diff|)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    core, seconds, diff = ov.Core(), {"ov": 0.0, "ort": 0.0}, 0.0
    settings = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1}
    for fold in range(folds):
        path = root / "models" / f"fold{fold}.onnx"
        request = core.compile_model(str(path), "CPU", settings).create_infer_request()
        session = make_session(path, 1, False)
        runs = {
            "ov": lambda x, r=request: r.infer({0: x})[0].copy(),
            "ort": lambda x, s=session: s.run(["probs"], {"mel": x})[0],
        }
        out = {}
        for name, fn in runs.items():
            fn(mel[:1])
            start = time.perf_counter()
            out[name] = np.concatenate([fn(mel[k : k + 1]) for k in range(len(mel))])
            seconds[name] += time.perf_counter() - start
        diff = max(diff, float(np.abs(out["ov"] - out["ort"]).max()))
    return seconds["ov"], seconds["ort"], diff


# --- the report --------------------------------------------------------------------------------


def sweeps(root: Path, test: Path, cores: int, rounds: int) -> dict:
    """Batch sizes of (a) and (b) (1 fold, 8 windows), and (c) per processes x threads x batch
    (interleaved over `rounds`); returns the chosen batches."""
    base = {"root": str(root), "windows": 8, "folds": 1, "repeats": 1, "batches": [1, 2, 4, 8]}
    found = {}
    for name, runtime, threads in (
        ("(a)", "eager", cores),
        ("(b)", "ort", cores),
        ("(a') context: eager 1 thread", "eager", 1),
    ):
        got = child("runtime", base | {"runtime": runtime, "threads": threads})
        rates = {int(b): 8 / s for b, s in got["seconds"].items()}
        found[name] = max(rates, key=rates.get), max(rates.values())
        print(f"{name} batch sweep, 1 fold x 8 windows: {fmt(rates)} -> {found[name][0]}")
    if rounds:
        settings = [(cores, 1, b) for b in (1, 2, 4)] + [(1, cores, b) for b in (1, 4)]
        rates = {s: [] for s in settings}
        for _ in range(rounds):
            for s in settings:
                got = e2e(root / "models", test, root / "sweep.csv", *s)
                rates[s].append(got["model_windows"] / got["seconds"])
        for (processes, threads, batch), r in rates.items():
            print(
                f"(c) {processes} proc x {threads} thr, batch {batch}: "
                f"{statistics.median(r):.1f} model-windows/s (median of {rounds})"
            )
    return found


def rounds_abc(root: Path, test: Path, args, batches, shipped) -> dict:
    """(a), (b), (c) in turn, `args.rounds` times. (c) also runs on one 5-second file per
    worker: that run is almost all fixed cost (pool start, session loads, first calls)."""
    got = {k: [] for k in ("a", "b", "c", "c_fixed", "peak_a", "peak_b", "peak_c")}
    tiny = make_soundscapes(root / "tiny", shipped[0], 5.0, Config())
    spec = {"root": str(root), "folds": args.folds, "repeats": 1}
    for r in range(args.rounds):
        a = child(
            "runtime",
            spec
            | {
                "runtime": "eager",
                "threads": args.cores,
                "batches": [batches[0]],
                "windows": args.eager_windows,
                "save": str(root / "a.npy"),
            },
        )
        b = child(
            "runtime",
            spec
            | {
                "runtime": "ort",
                "threads": args.cores,
                "batches": [batches[1]],
                "windows": 10**9,
                "save": str(root / "b.npy"),
            },
        )
        c = e2e(root / "models", test, root / "c.csv", *shipped)
        c_fixed = e2e(root / "models", tiny, root / "tiny.csv", *shipped)
        for key, value in (("a", a), ("b", b)):
            got[key].append(value["model_windows"] / next(iter(value["seconds"].values())))
            got[f"peak_{key}"].append(value["peak_mb"])
        got["c"].append(c["model_windows"] / c["seconds"])
        got["c_fixed"].append(c_fixed["seconds"])
        got["peak_c"].append(c["peak_mb"])
        print(
            f"  round {r + 1}: (a) {got['a'][-1]:.1f}, (b) {got['b'][-1]:.1f}, (c) "
            f"{got['c'][-1]:.1f} model-windows/s; (c) {c['seconds']:.1f} s, on "
            f"{shipped[0]} 5-s file(s) {c_fixed['seconds']:.1f} s",
            flush=True,
        )
    got["model_windows"] = c["model_windows"]
    return got


def summarise(got: dict, root: Path, args, batches, shipped) -> float:
    """Rates, ratios, agreement, projection, memory; returns (c) / (a), medians."""
    med = {k: statistics.median(got[k]) for k in ("a", "b", "c")}
    best = {k: max(got[k]) for k in ("a", "b", "c")}
    eager = np.load(root / "a.npy")
    diff_b = np.abs(np.load(root / "b.npy")[: len(eager)] - eager).max()
    diff_c = np.abs(read_submission(root / "c.csv")[: len(eager)] - eager).max()
    rows = (
        ("(a) PyTorch eager", f"1 proc x {args.cores} thr, batch {batches[0]}", "a", None),
        ("(b) onnxruntime", f"1 proc x {args.cores} thr, batch {batches[1]}", "b", diff_b),
        (
            "(c) end to end",
            f"{shipped[0]} proc x {shipped[1]} thr, batch {shipped[2]}",
            "c",
            diff_c,
        ),
    )
    for name, setting, key, diff in rows:
        agree = "" if diff is None else f", max |diff| vs (a) {diff:.1e}"
        print(
            f"{name:18s} {setting:26s} {med[key]:6.1f} model-windows/s (best round "
            f"{best[key]:5.1f}) {med[key] / med['a']:5.2f}x (best {best[key] / best['a']:.2f}x)"
            f"{agree}; peak {statistics.median(got['peak_' + key]):.0f} MB"
        )
    total, fixed = got["model_windows"], statistics.median(got["c_fixed"])
    for label, rate in (("median", med["c"]), ("best round", best["c"])):
        steady = max(total / rate - fixed, total / rate / 2) / total  # s per model-window
        minutes = (fixed + steady * HIDDEN_TEST_WINDOWS * args.folds) / 60
        print(
            f"(c) projected hidden test ({HIDDEN_TEST_WINDOWS} windows x {args.folds} folds) at "
            f"the {label} rate: {minutes:.1f} min (fixed costs {fixed:.1f} s)"
        )
    print("peak memory: summed PSS (shared pages split) of the run's process tree")
    return med["c"] / med["a"]


def report(tmp: Path, config: Config, args) -> float:
    """Everything but the last line; returns (c) / (a)."""
    make_models(tmp, args.folds, config)
    test = make_soundscapes(tmp / "test", args.files, args.seconds, config)
    windows = load_windows(test, config)
    with torch.inference_mode():
        np.save(tmp / "mel.npy", LogMel(config)(torch.from_numpy(windows)).numpy())
    print(
        f"{len(windows)} windows x {args.folds} folds = {len(windows) * args.folds} "
        f"model-windows; (a) on the first {args.eager_windows} windows"
    )
    found = sweeps(tmp, test, args.cores, args.sweep_rounds)
    batches = (found["(a)"][0], found["(b)"][0])
    default = Config()
    shipped = (
        *plan_workers(default.infer_processes, default.infer_threads, args.cores),
        default.infer_batch_size,
    )
    got = rounds_abc(tmp, test, args, batches, shipped)
    ratio = summarise(got, tmp, args, batches, shipped)
    one_thread = found["(a') context: eager 1 thread"][1]
    print(
        f"(c) vs (a') eager on 1 thread (sweep's best): "
        f"{statistics.median(got['c']) / one_thread:.2f}x"
    )
    mig = mel_in_graph(tmp, windows[:8], config)
    outside, inside = mig["mel"] + args.folds * mig["model"], args.folds * mig["fused"]
    print(
        f"log-mel in the graph: torch log-mel {mig['mel']:.1f} ms + model {mig['model']:.1f} "
        f"ms vs log-mel+model graph {mig['fused']:.1f} ms per window (1 thread, max |diff| "
        f"{mig['max_abs_diff']:.1e}); {args.folds} folds: outside {outside:.0f} ms, inside "
        f"{inside:.0f} ms per window -> outside {inside / outside:.2f}x faster"
    )
    ov = openvino_vs_ort(tmp, np.load(tmp / "mel.npy")[: args.eager_windows], args.folds)
    if ov is not None:
        print(
            f"OpenVINO fp32 vs onnxruntime (1 thread, batch 1, {args.eager_windows} windows x "
            f"{args.folds} folds): {ov[0]:.1f} s vs {ov[1]:.1f} s, max |diff| {ov[2]:.1e}"
        )
    return ratio


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6, help="soundscapes in the test set")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats of a, b, c")
    parser.add_argument("--eager-windows", type=int, default=12, help="(a) runs on these first")
    parser.add_argument("--sweep-rounds", type=int, default=1, help="0 skips the (c) sweep")
    parser.add_argument("--engines", action="store_true", help="only torch vs onnxruntime")
    parser.add_argument("--engine-windows", type=int, default=24, help="--engines: windows")
    parser.add_argument("--engine-folds", type=int, default=2, help="--engines: fold models")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        work = {"runtime": runtime_child, "e2e": e2e_child, "engine": engine_child}
        print(json.dumps(work[args.child[0]](json.loads(args.child[1]))))
        return
    if args.engines:
        tick = time.perf_counter()
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        engines(args)
        print(f"total {time.perf_counter() - tick:.0f} s")
        return
    tick, args.cores = time.perf_counter(), available_cores()
    print(f"cores {args.cores}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    torch.set_num_threads(args.cores)
    config = Config(pretrained=False)  # efficientnet_b0, 256 x 501: the recipe's input
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as name:
        ratio = report(Path(name), config, args)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - tick:.0f} s, load average now {load}")
    print(f"end-to-end vs eager: {ratio:.2f}x")


def fmt(rates: dict) -> str:
    return ", ".join(f"b{k}: {v:.1f}/s" for k, v in rates.items())


if __name__ == "__main__":
    main()
