"""lib.infer_torch: the PyTorch engine gives the onnxruntime engine's probabilities from the
models dataset's fold<k>.pt, and a weights file that does not fit says how to fix it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_BACKBONE

from lib.config import Config
from lib.export import export_run
from lib.infer import Predictor, load_bundle
from lib.infer_torch import load_torch_fold
from lib.model import build_model, save_checkpoint
from lib.models_dataset import torch_fold_file

TINY = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)
CLASSES = ["abethr1", "brodov1", "comfin", "yewgre1"]
RUN = Config(infer_processes=1, infer_threads=1, infer_batch_size=3)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for fold in range(2):
        torch.manual_seed(10 + fold)
        model = build_model(TINY, len(CLASSES), pretrained=False)
        save_checkpoint(root / "run" / f"fold{fold}" / "best.pt", model, TINY, CLASSES)
    export_run(root / "run", root / "models")
    return root / "models"


def windows(count: int = 7) -> np.ndarray:
    """Audio-like windows: tones of different pitch in noise, one silent."""
    rng = np.random.default_rng(1)
    t = np.arange(TINY.clip_samples) / TINY.sample_rate
    waves = [0.3 * np.sin(2 * np.pi * (600 + 900 * k) * t) for k in range(count)]
    waves = np.stack(waves) + rng.normal(0, 0.02, (count, len(t)))
    waves[-1] = 0.0
    return waves.astype(np.float32)


def test_torch_engine_equals_onnxruntime_engine(models):
    bundle = load_bundle(models)
    assert [p.name for p in bundle.weights] == ["fold0.pt", "fold1.pt"]
    ort_predictor = Predictor(bundle, RUN, "onnxruntime")
    torch_predictor = Predictor(bundle, RUN, "torch")
    waves = windows()
    for folds in (1, 2):
        want, _, _ = ort_predictor.predict_windows(waves, folds)
        got, _, model_s = torch_predictor.predict_windows(waves, folds)
        assert got.shape == (len(waves), len(CLASSES)) and model_s > 0
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    one, _, _ = torch_predictor.predict_windows(waves, 1)
    assert np.abs(one - got).max() > 1e-3  # the second fold counts: folds really differ


def test_weights_that_do_not_fit_name_the_file_and_the_fix(models):
    with pytest.raises(RuntimeError, match=r"(?s)fold0\.pt: cannot load.*Fix: .*export_run"):
        load_torch_fold(models / torch_fold_file(0), TINY, len(CLASSES) + 1)
