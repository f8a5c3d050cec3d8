"""lib.models_dataset: the names lib.export writes and lib.infer reads."""

from __future__ import annotations

from pathlib import Path

from lib.atomic import AtomicTarget
from lib.models_dataset import (
    FOLD_FILE_GLOB,
    TORCH_FILE_GLOB,
    fold_file,
    fold_number,
    torch_fold_file,
    torch_fold_number,
)


def test_fold_file_names_round_trip():
    for fold in (0, 3, 10):
        assert fold_number(fold_file(fold)) == fold
        assert Path(fold_file(fold)).match(FOLD_FILE_GLOB)
    assert fold_file(3) == "fold3.onnx"


def test_torch_weights_names_round_trip_and_differ_from_onnx():
    for fold in (0, 3, 10):
        assert torch_fold_number(torch_fold_file(fold)) == fold
        assert Path(torch_fold_file(fold)).match(TORCH_FILE_GLOB)
        assert not Path(torch_fold_file(fold)).match(FOLD_FILE_GLOB)
        assert fold_number(torch_fold_file(fold)) is None  # never loaded as an ONNX model
    assert torch_fold_file(3) == "fold3.pt"
    for name in ("best.pt", "fold1.pt.tmp", "fold1.onnx", AtomicTarget(Path("fold0.pt")).tmp.name):
        assert torch_fold_number(name) is None, name


def test_other_names_are_not_folds(tmp_path):
    """A temporary file a killed export left behind must never be loaded as a fold model."""
    leftover = AtomicTarget(tmp_path / fold_file(0)).tmp.name
    for name in (leftover, "fold0.raw.onnx", "fold.onnx", "xfold1.onnx", "fold1.onnx.bak"):
        assert fold_number(name) is None, name
