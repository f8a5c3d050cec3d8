"""Fold checkpoints -> graph-optimised ONNX models for CPU inference (the models dataset).

Why ONNX: on Kaggle's 4 CPUs the recipe's five effnet_b0 folds do not fit in 2 hours under
PyTorch eager; onnxruntime with graph optimisations runs them several times faster.

What is exported: normalised log-mel (batch, 1, n_mels, frames) -> window probabilities
(batch, classes; `config.window_output`), sigmoid inside the graph. The log-mel stays OUTSIDE
the graph: it is computed once per window by the one LogMel implementation and shared by all
fold models (benchmarks/bench_infer.py: a mel inside each graph is paid once per fold, 1.3x
slower for 5 folds; see benchmarks/RESULTS.md).

Steps of `export_onnx`: TorchScript-based exporter (dynamo=False, opset 17, dynamic batch) ->
`onnx.checker` -> onnxruntime offline optimisation saved at ORT_ENABLE_EXTENDED (portable: the
ORT_ENABLE_ALL level bakes this CPU's memory layout, e.g. AVX-512 NCHWc, into the file; the
inference session applies ORT_ENABLE_ALL when it loads) -> parity check of the saved model,
loaded as inference loads it, against PyTorch (max |diff| of probabilities <= 1e-4) or raise.

Beside each fold<k>.onnx, export_run writes fold<k>.pt: the same weights as a plain state_dict
for the PyTorch engine (lib.infer_torch), which the inference notebook uses when onnxruntime
cannot run (no wheel for Kaggle's Python, a session that cannot be created).

The models folder's names (fold<k>.onnx, fold<k>.pt, classes.json, config.json, export.json,
the graph's input/output names) are lib.models_dataset's, which lib.infer reads; the run folder's
fold<k>/best.pt come from lib.run_dir; files appear whole or not at all (lib.atomic).

onnxruntime is imported inside functions: the training notebook inlines this module before its
install cell may have run, and import must not fail there.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lib.atomic import AtomicTarget, atomic_write
from lib.config import Config
from lib.features import LogMel
from lib.infer_torch import ClipProbabilities, load_torch_fold
from lib.model import model_from_checkpoint, unwrap
from lib.models_dataset import (
    CLASSES_FILE,
    CONFIG_FILE,
    INPUT_NAME,
    MANIFEST_FILE,
    OUTPUT_NAME,
    fold_file,
    torch_fold_file,
)
from lib.run_dir import fold_dirs

OPSET = 17
PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """An export that must not ship (parity failed, no folds found); the message says which."""


@dataclass(frozen=True)
class ExportReport:
    """What one export did; saved in the models folder's export.json."""

    path: str
    classes: int
    max_abs_diff: float  # onnxruntime (ORT_ENABLE_ALL at load) vs PyTorch probabilities
    parity_windows: int
    opset: int = OPSET


def probe_windows(config: Config, count: int = 6, seed: int = 0) -> np.ndarray:
    """Deterministic audio-like windows (n, clip_samples) for the parity check when no real
    windows are given: chirps of different pitch over noise of different levels, one silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(config.clip_samples) / config.sample_rate
    windows = []
    for k in range(count):
        f0 = 800.0 + 1700.0 * k
        chirp = np.sin(2 * np.pi * (f0 * t + 300.0 * t * t)) * (np.sin(2 * np.pi * 1.5 * t) > 0)
        noise = rng.normal(0.0, 10.0 ** (-1.0 - k / 2), size=t.shape)
        windows.append(0.3 * chirp + noise)
    windows[-1] = np.zeros_like(t)  # silence: the log-mel's degenerate case must match too
    return np.asarray(windows, dtype=np.float32)


def _resolve(checkpoint_or_model, config: Config | None, classes) -> tuple[nn.Module, Config, list]:
    """A checkpoint path carries its own config and classes; a bare model needs `config`."""
    if isinstance(checkpoint_or_model, (str, Path)):
        model, ckpt_config, ckpt_classes = model_from_checkpoint(checkpoint_or_model)
        return model, config or ckpt_config, list(classes or ckpt_classes)
    if config is None:
        raise ValueError("export_onnx: a model object needs `config` (the one it was built with)")
    model = checkpoint_or_model.eval()
    if classes is None:
        classes = [f"class_{k}" for k in range(model.head.classifier.out_channels)]
    return model, config, list(classes)


def _torch_export(module: nn.Module, path: Path, config: Config) -> None:
    """TorchScript exporter: handles dynamic_axes fully (the dynamo default only partly).

    The dummy has 1 channel, as LogMel gives: a model with a 3-channel stem then traces its
    own channel repeat into the graph."""
    dummy = torch.zeros(2, 1, config.n_mels, config.n_frames)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def _optimise_offline(raw_path: Path, out_path: Path) -> None:
    """Save onnxruntime's graph optimisations at the portable ORT_ENABLE_EXTENDED level."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out_path)
    ort.InferenceSession(str(raw_path), options, providers=["CPUExecutionProvider"])


def onnx_probabilities(path: Path, mel: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a saved model the way inference does (ORT_ENABLE_ALL at load), batch by batch of
    varying size (1, 2, 3, ...) so the dynamic batch axis is exercised too."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out, start, size = [], 0, 1
    while start < len(mel):
        out.append(session.run([OUTPUT_NAME], {INPUT_NAME: mel[start : start + size]})[0])
        start, size = start + size, size + 1
    return np.concatenate(out)


def check_parity(module: nn.Module, path: Path, mel: np.ndarray, tolerance: float) -> float:
    """Max |onnxruntime - PyTorch| over the windows' probabilities; raises ExportError above
    `tolerance` (a model that disagrees with its checkpoint must not ship)."""
    with torch.inference_mode():
        expected = module(torch.from_numpy(mel)).numpy()
    got = onnx_probabilities(path, mel)
    diff = float(np.abs(got - expected).max())
    if not np.isfinite(diff) or diff > tolerance:
        raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} > {tolerance}")
    return diff


def export_onnx(
    checkpoint_or_model,
    out_path: str | Path,
    config: Config | None = None,
    classes=None,
    sample_windows: np.ndarray | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportReport:
    """Export one model (a checkpoint path or an nn.Module) to an optimised ONNX file.

    `sample_windows` (n, clip_samples): real windows for the parity check (default: probe
    windows). The file is written atomically: nothing appears at `out_path` unless it passed.
    """
    _require_onnxruntime()
    model, config, classes = _resolve(checkpoint_or_model, config, classes)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    module = ClipProbabilities(model, config.window_output).eval()
    windows = probe_windows(config) if sample_windows is None else np.asarray(sample_windows)
    with torch.inference_mode():
        mel = LogMel(config)(torch.from_numpy(windows.astype(np.float32))).numpy()
    raw = out_path.with_name(out_path.stem + ".raw.onnx")  # the exporter's output, scratch
    try:
        with AtomicTarget(out_path) as target:  # renamed onto out_path only if parity held
            _torch_export(module, raw, config)
            import onnx

            onnx.checker.check_model(str(raw))
            _optimise_offline(raw, target.tmp)
            diff = check_parity(module, target.tmp, mel, tolerance)
    finally:
        raw.unlink(missing_ok=True)
    return ExportReport(str(out_path), len(classes), diff, len(mel))


def _require_onnxruntime() -> None:
    """Fail before the slow part, saying how to get it (Kaggle's image lacks onnxruntime)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ExportError(
            "export needs onnxruntime (offline graph optimisation and the parity check): "
            "`pip install onnxruntime` where internet is on, or "
            "lib.onnxruntime_setup.ensure_onnxruntime(<wheels folder>) offline"
        ) from err


def fold_checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """{fold: run_dir/fold<k>/best.pt} in fold order."""
    folders = fold_dirs(Path(run_dir)).items()
    return {fold: path / "best.pt" for fold, path in folders if (path / "best.pt").is_file()}


def export_run(
    run_dir: str | Path, out_dir: str | Path, sample_windows: np.ndarray | None = None
) -> list[Path]:
    """Export every run_dir/fold<k>/best.pt to out_dir/fold<k>.onnx and write out_dir/
    classes.json, config.json and export.json: the content of the models dataset.

    All folds must share one class list (the submission's columns) and feature settings.
    """
    checkpoints = fold_checkpoints(run_dir)
    if not checkpoints:
        raise ExportError(f"{run_dir}: no fold<k>/best.pt checkpoints to export")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports, first = [], None
    for fold, checkpoint in checkpoints.items():
        model, config, classes = model_from_checkpoint(checkpoint)
        if first is None:
            first = (config, classes)
        elif classes != first[1] or _feature_fields(config) != _feature_fields(first[0]):
            raise ExportError(f"{checkpoint}: classes or feature settings differ from fold 0's")
        path = out_dir / fold_file(fold)
        reports.append(export_onnx(model, path, config, classes, sample_windows))
        save_torch_weights(model, out_dir / torch_fold_file(fold), config, len(classes))
    config, classes = first
    _write_text(out_dir / CLASSES_FILE, json.dumps(classes, indent=1) + "\n")
    atomic_write(out_dir / CONFIG_FILE, config.save)
    manifest = {"mel_in_graph": False, "input": INPUT_NAME, "output": OUTPUT_NAME}
    manifest["folds"] = [
        asdict(r) | {"path": Path(r.path).name, "torch_weights": torch_fold_file(fold)}
        for fold, r in zip(checkpoints, reports, strict=True)
    ]
    _write_text(out_dir / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
    return [Path(r.path) for r in reports]


def save_torch_weights(model: nn.Module, path: Path, config: Config, classes: int) -> None:
    """The model's plain state_dict (CPU tensors only: `torch.load(weights_only=True)` reads
    it), written atomically, then loaded back as the PyTorch engine loads it: a file that does
    not rebuild the same model must not ship."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    reloaded = load_torch_fold(path, config, classes).model.state_dict()
    if reloaded.keys() != state.keys() or any(
        not torch.equal(reloaded[k], state[k]) for k in state
    ):
        path.unlink(missing_ok=True)
        raise ExportError(f"{path}: the saved PyTorch weights do not load back unchanged")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _feature_fields(config: Config) -> tuple:
    """The settings the shared log-mel depends on: folds must agree on them."""
    return (
        config.sample_rate,
        config.clip_seconds,
        config.n_fft,
        config.win_length,
        config.hop_length,
        config.f_min,
        config.f_max,
        config.n_mels,
        config.top_db,
        config.in_channels,
    )
