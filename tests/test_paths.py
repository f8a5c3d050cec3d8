"""lib/paths.py: Kaggle roots from the environment, competition and dataset lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib import paths
from lib.paths import (
    find_competition,
    find_dataset,
    input_root,
    working_root,
)


def test_roots_default_to_kaggle(monkeypatch):
    monkeypatch.delenv("KAGGLE_INPUT_DIR", raising=False)
    monkeypatch.delenv("KAGGLE_WORKING_DIR", raising=False)
    assert input_root() == Path("/kaggle/input")
    assert working_root() == Path("/kaggle/working")


def test_roots_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(tmp_path / "in"))
    monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / "out"))
    assert input_root() == tmp_path / "in"
    assert working_root() == tmp_path / "out"
    assert not (tmp_path / "out").exists()  # lookups do no I/O


@pytest.mark.parametrize("layout", ["birdclef-2023", "competitions/birdclef-2023"])
def test_find_competition_both_layouts(tmp_path, layout):
    (tmp_path / layout).mkdir(parents=True)
    assert find_competition(tmp_path) == tmp_path / layout


def test_find_competition_prefers_flat_layout(tmp_path):
    (tmp_path / "birdclef-2023").mkdir()
    (tmp_path / "competitions" / "birdclef-2023").mkdir(parents=True)
    assert find_competition(tmp_path) == tmp_path / "birdclef-2023"


def test_find_competition_uses_environment(monkeypatch, tmp_path):
    (tmp_path / "competitions" / "birdclef-2023").mkdir(parents=True)
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(tmp_path))
    assert find_competition() == tmp_path / "competitions" / "birdclef-2023"


def test_find_competition_error_names_paths_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_competition(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "birdclef-2023") in message
    assert str(tmp_path / "competitions" / "birdclef-2023") in message
    assert "attach" in message and "KAGGLE_INPUT_DIR" in message


def test_find_dataset_flat_and_owner_layouts(tmp_path):
    (tmp_path / "datasets" / "someone" / "my-models").mkdir(parents=True)
    assert find_dataset("my-models", tmp_path) == tmp_path / "datasets" / "someone" / "my-models"
    (tmp_path / "my-models").mkdir()
    assert find_dataset("my-models", tmp_path) == tmp_path / "my-models"


def test_find_dataset_requires_file(tmp_path):
    (tmp_path / "my-models").mkdir()  # attached but empty: not it
    other = tmp_path / "renamed-copy"
    other.mkdir()
    (other / "fold0.onnx").write_bytes(b"")
    assert find_dataset("my-models", tmp_path, required_file="*.onnx") == other


def test_find_dataset_search_is_bounded_and_sorted(tmp_path):
    deep = tmp_path / "datasets" / "owner" / "copy" / "sub"
    deep.mkdir(parents=True)
    (deep / "classes.txt").write_text("a\n")
    assert find_dataset("x-models", tmp_path, required_file="classes.txt") == deep


def test_find_dataset_ambiguous_search_fails(tmp_path):
    for name in ("copy-a", "copy-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fold0.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="several folders hold"):
        find_dataset("my-models", tmp_path, required_file="*.onnx")


def test_find_dataset_error_names_paths_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_dataset("my-models", tmp_path, required_file="*.onnx")
    message = str(err.value)
    assert str(tmp_path / "my-models") in message
    assert str(tmp_path / "datasets" / "*" / "my-models") in message
    assert "*.onnx" in message and "attach" in message and "KAGGLE_INPUT_DIR" in message


def test_dataset_slugs_fit_kaggle_limits():
    for slug in (paths.MODELS_DATASET_SLUG, paths.WHEELS_DATASET_SLUG):
        assert 6 <= len(slug) <= 50
