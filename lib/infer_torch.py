"""The PyTorch engine: the fold models run by PyTorch, when onnxruntime cannot run them.

Kaggle's image always has PyTorch and timm but never onnxruntime; if the offline install fails
(no wheel for this Python, pip or import failure) or a session cannot be created for the models,
the notebook still predicts with the same weights: the models dataset carries each fold as
`fold<k>.pt` (lib.models_dataset), a plain state_dict written by lib.export.export_run. The
model is rebuilt with lib.model.build_model (pretrained=False: nothing is downloaded offline).

`ClipProbabilities` is the one definition of what a fold model computes (log-mel -> window
probabilities): lib.export exports it to ONNX, this engine runs it eagerly, so both engines
give the same probabilities (tests/test_infer_torch.py: within 1e-4).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lib.config import Config
from lib.model import build_model, window_probabilities


class ClipProbabilities(nn.Module):
    """The SED model reduced to what inference needs: one probability per class and window,
    chosen by `config.window_output` (clip-wise by default)."""

    def __init__(self, model: nn.Module, output: str = "clip"):
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return window_probabilities(self.model(mel), self.output)  # (batch, classes)


def load_torch_fold(path: str | Path, config: Config, classes: int) -> ClipProbabilities:
    """A fold's `fold<k>.pt` as an eval-mode ClipProbabilities; raises naming the file and the
    fix when the weights do not fit the config (another backbone, another class count)."""
    model = build_model(config, classes, pretrained=False)
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        raise RuntimeError(
            f"{path}: cannot load the PyTorch weights ({type(err).__name__}: {err}). Fix: "
            "rebuild the models dataset with lib.export.export_run, which writes fold<k>.pt "
            "beside fold<k>.onnx from the same checkpoint."
        ) from err
    return ClipProbabilities(model, config.window_output).eval()
