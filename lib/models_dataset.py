"""The models dataset's contract: what `lib.export` writes and `lib.infer` reads.

One folder, flat: `fold<k>.onnx` per fold, `fold<k>.pt` per fold (the same weights for the
PyTorch engine, used when onnxruntime cannot run: a plain `state_dict` of
`lib.model.build_model(config, len(classes))`, loadable with `torch.load(weights_only=True)`),
`classes.json` (the species, in column order), `config.json` (the training `Config`) and
`export.json` (a manifest). The notebook finds the
dataset by `classes.json` at its top. The ONNX graph takes `mel` (batch, 1, n_mels, frames),
float32 normalised log-mel, and gives `probs` (batch, classes), float32 window probabilities.
"""

from __future__ import annotations

import re

INPUT_NAME = "mel"  # (batch, 1, n_mels, frames) float32, normalised log-mel
OUTPUT_NAME = "probs"  # (batch, classes) float32, lib.model.window_probabilities
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "export.json"
FOLD_FILE_RE = re.compile(r"^fold(\d+)\.onnx$")
FOLD_FILE_GLOB = "fold*.onnx"
TORCH_FILE_RE = re.compile(r"^fold(\d+)\.pt$")
TORCH_FILE_GLOB = "fold*.pt"


def fold_file(fold: int) -> str:
    """The file name of fold `fold`'s model: `fold3.onnx`."""
    return f"fold{int(fold)}.onnx"


def fold_number(name: str) -> int | None:
    """The fold of a file name written by `fold_file`, None for any other name."""
    match = FOLD_FILE_RE.match(name)
    return int(match.group(1)) if match else None


def torch_fold_file(fold: int) -> str:
    """The file name of fold `fold`'s PyTorch weights: `fold3.pt`."""
    return f"fold{int(fold)}.pt"


def torch_fold_number(name: str) -> int | None:
    """The fold of a file name written by `torch_fold_file`, None for any other name."""
    match = TORCH_FILE_RE.match(name)
    return int(match.group(1)) if match else None
