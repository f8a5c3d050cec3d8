"""Export: ONNX parity with PyTorch, portable optimisation level, the models-dataset layout."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import TINY_BACKBONE

from lib.audio import load_audio, make_windows, write_audio
from lib.config import Config
from lib.export import (
    ExportError,
    export_onnx,
    export_run,
    fold_checkpoints,
    onnx_probabilities,
)
from lib.features import LogMel
from lib.infer_torch import ClipProbabilities, load_torch_fold
from lib.model import build_model, save_checkpoint
from lib.models_dataset import INPUT_NAME, torch_fold_file

TINY = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)
CLASSES = ["abethr1", "comfin", "yewgre1"]


def real_windows(tmp_path, config: Config, seconds: float = 20.0) -> np.ndarray:
    """Windows cut from an ogg file written and decoded like a soundscape (tones + noise)."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * config.sample_rate)) / config.sample_rate
    wave = 0.2 * np.sin(2 * np.pi * (2500 + 800 * np.sin(t)) * t) + rng.normal(0, 0.02, t.shape)
    path = tmp_path / "probe.ogg"
    write_audio(path, wave.astype(np.float32), config.sample_rate)
    windows, _ = make_windows(load_audio(path, config.sample_rate), config.sample_rate)
    return windows  # (n, clip_samples)


def test_effnet_b0_parity_at_recipe_size(tmp_path):
    """The recipe's model at 256 x 501: onnxruntime (as inference loads it) == PyTorch, 1e-4."""
    config = Config(pretrained=False)  # efficientnet_b0, 256 mels, 501 frames
    torch.manual_seed(0)
    model = build_model(config, 264, pretrained=False).eval()
    save_checkpoint(tmp_path / "best.pt", model, config, [f"sp{k:03d}" for k in range(264)])
    windows = real_windows(tmp_path, config)
    report = export_onnx(tmp_path / "best.pt", tmp_path / "fold0.onnx", sample_windows=windows)
    assert report.max_abs_diff <= 1e-4 and report.classes == 264

    with torch.inference_mode():
        mel = LogMel(config)(torch.from_numpy(windows)).numpy()  # (n, 1, 256, 501)
        expected = torch.sigmoid(model(torch.from_numpy(mel)).clip_logits).numpy()
    assert mel.shape[1:] == (1, 256, 501)
    got = onnx_probabilities(tmp_path / "fold0.onnx", mel)  # batches of 1, 2, 3: dynamic axis
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "fold0.onnx", "probe.ogg"]


def test_saved_model_is_portable(tmp_path):
    """Saved at ORT_ENABLE_EXTENDED: no NCHWc layout ops bound to this CPU's vector width."""
    torch.manual_seed(0)
    model = build_model(TINY, len(CLASSES), pretrained=False)
    export_onnx(model, tmp_path / "m.onnx", TINY, CLASSES)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    domains = {node.domain for node in graph.node}
    assert "com.microsoft.nchwc" not in domains
    assert graph.input[0].name == INPUT_NAME
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_parity_failure_raises_and_leaves_no_file(tmp_path):
    model = build_model(TINY, len(CLASSES), pretrained=False)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(model, tmp_path / "m.onnx", TINY, CLASSES, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_export_run_writes_models_dataset(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    TINY.save(run / "config.json")
    for fold in (2, 10):  # numeric order: as text, fold10 would sort before fold2
        torch.manual_seed(fold)
        model = build_model(TINY, len(CLASSES), pretrained=False)
        save_checkpoint(run / f"fold{fold}" / "best.pt", model, TINY, CLASSES, fold=fold)
    assert list(fold_checkpoints(run)) == [2, 10]

    paths = export_run(run, tmp_path / "models")
    assert [p.name for p in paths] == ["fold2.onnx", "fold10.onnx"]
    out = tmp_path / "models"
    assert sorted(p.name for p in out.glob("*.pt")) == ["fold10.pt", "fold2.pt"]
    assert json.loads((out / "classes.json").read_text()) == CLASSES
    assert Config.load(out / "config.json") == TINY
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["mel_in_graph"] is False
    assert all(f["max_abs_diff"] <= 1e-4 for f in manifest["folds"])
    assert [f["torch_weights"] for f in manifest["folds"]] == ["fold2.pt", "fold10.pt"]


def test_torch_weights_round_trip(tmp_path):
    """fold<k>.pt is a plain state_dict (torch.load(weights_only=True) reads it) that rebuilds,
    with pretrained=False, the checkpoint's model: the same probabilities."""
    torch.manual_seed(3)
    model = build_model(TINY, len(CLASSES), pretrained=False)
    save_checkpoint(tmp_path / "run" / "fold0" / "best.pt", model, TINY, CLASSES)
    export_run(tmp_path / "run", tmp_path / "models")
    state = torch.load(tmp_path / "models" / torch_fold_file(0), weights_only=True)
    assert set(state) == set(model.state_dict())
    rebuilt = build_model(TINY, len(CLASSES), pretrained=False)
    rebuilt.load_state_dict(state)  # strict: every tensor, no extra
    mel = torch.randn(3, 1, TINY.n_mels, TINY.n_frames)
    with torch.inference_mode():
        want = ClipProbabilities(model.eval())(mel)
        got = load_torch_fold(tmp_path / "models" / "fold0.pt", TINY, len(CLASSES))(mel)
        assert torch.equal(ClipProbabilities(rebuilt.eval())(mel), want)
    assert torch.equal(got, want)


def test_export_run_rejects_bad_runs(tmp_path):
    with pytest.raises(ExportError, match="no fold"):
        export_run(tmp_path, tmp_path / "models")
    for fold, classes in ((0, CLASSES), (1, CLASSES[:2])):
        model = build_model(TINY, len(classes), pretrained=False)
        save_checkpoint(tmp_path / f"fold{fold}" / "best.pt", model, TINY, classes)
    with pytest.raises(ExportError, match="differ"):
        export_run(tmp_path, tmp_path / "models")


def test_missing_onnxruntime_is_explained(tmp_path, monkeypatch):
    """Kaggle's image has no onnxruntime: the training notebook must be told how to get it."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    model = build_model(TINY, len(CLASSES), pretrained=False)
    with pytest.raises(ExportError, match="pip install onnxruntime"):
        export_onnx(model, tmp_path / "m.onnx", TINY, CLASSES)
