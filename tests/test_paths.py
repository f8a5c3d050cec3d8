"""lib/paths.py: Kaggle roots from the environment, competition and dataset lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib import paths
from lib.paths import (
    AmbiguousInputError,
    find_competition,
    find_dataset,
    find_notebook_output,
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


# -- attached notebook outputs -----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["notebooks/alice/my-notebook", "my-notebook"])
def test_find_notebook_output_every_layout(tmp_path, layout):
    (tmp_path / layout / "runs").mkdir(parents=True)
    assert find_notebook_output("my-notebook", tmp_path, required="runs") == tmp_path / layout


def test_find_notebook_output_prefers_the_owners_copy(tmp_path):
    for owner in ("alice", "bob"):
        (tmp_path / "notebooks" / owner / "my-notebook" / "runs").mkdir(parents=True)
    found = find_notebook_output("my-notebook", tmp_path, owner="bob", required="runs")
    assert found == tmp_path / "notebooks" / "bob" / "my-notebook"
    with pytest.raises(ValueError, match="2 attached copies"):
        find_notebook_output("my-notebook", tmp_path, required="runs")


def test_two_attached_outputs_name_both_folders_and_the_setting_that_picks_one(tmp_path):
    (tmp_path / "notebooks" / "alice" / "my-notebook" / "runs").mkdir(parents=True)
    (tmp_path / "my-notebook" / "runs").mkdir(parents=True)  # the older mount layout
    with pytest.raises(AmbiguousInputError) as caught:
        find_notebook_output("my-notebook", tmp_path, required="runs", setting="RESUME_FROM")
    message = str(caught.value)
    assert str(tmp_path / "notebooks" / "alice" / "my-notebook") in message
    assert str(tmp_path / "my-notebook") in message
    assert f"set RESUME_FROM = 'alice/my-notebook' or '{tmp_path / 'my-notebook'}'" in message
    # each name the message offers picks that copy
    picked = find_notebook_output("alice/my-notebook", tmp_path, required="runs")
    assert picked == tmp_path / "notebooks" / "alice" / "my-notebook"
    older = find_notebook_output(str(tmp_path / "my-notebook"), tmp_path, required="runs")
    assert older == tmp_path / "my-notebook"


def test_find_notebook_output_needs_the_required_content(tmp_path):
    (tmp_path / "notebooks" / "alice" / "my-notebook").mkdir(parents=True)  # attached, no runs/
    with pytest.raises(FileNotFoundError) as err:
        find_notebook_output("my-notebook", tmp_path, required="runs")
    message = str(err.value)
    assert str(tmp_path / "notebooks" / "*" / "my-notebook") in message
    assert str(tmp_path / "my-notebook") in message and "--resume" in message


def test_find_notebook_output_searches_other_depths(tmp_path):
    (tmp_path / "kernels" / "alice" / "my-notebook" / "runs").mkdir(parents=True)
    found = find_notebook_output("my-notebook", tmp_path, required="runs")
    assert found == tmp_path / "kernels" / "alice" / "my-notebook"


def test_find_notebook_output_uses_the_environment(monkeypatch, tmp_path):
    (tmp_path / "notebooks" / "me" / "train-nb").mkdir(parents=True)
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(tmp_path))
    assert find_notebook_output("train-nb") == tmp_path / "notebooks" / "me" / "train-nb"


def _train_resume_part() -> str:
    """kernels/train.py's resume part (from its `# resume:` comment to the end of the cell)."""
    source = (Path(__file__).parents[1] / "kernels" / "train.py").read_text()
    start = source.index("# resume: this notebook's earlier output")
    return source[start : source.index("\n# %%", start)]


@pytest.mark.parametrize(
    "layout", ["notebooks/me/birdclef-2023-sed-train", "birdclef-2023-sed-train", None]
)
def test_train_notebook_says_whether_and_from_where_it_resumed(
    tmp_path, monkeypatch, capsys, layout
):
    import shutil

    inputs, runs = tmp_path / "input", tmp_path / "working" / "runs"
    inputs.mkdir()
    if layout:
        (inputs / layout / "runs" / "finetune").mkdir(parents=True)
        (inputs / layout / "runs" / "finetune" / "history.csv").write_text("epoch\n1\n")
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(inputs))
    code = _train_resume_part().replace("from lib.paths import find_notebook_output\n", "")
    names = {"RESUME_FROM": "birdclef-2023-sed-train", "RUNS": runs, "shutil": shutil}
    exec(code, names | {"find_notebook_output": find_notebook_output})
    said = capsys.readouterr().out
    if layout:
        assert f"resume: RESUMING the earlier run copied from {inputs / layout / 'runs'}" in said
        assert (runs / "finetune" / "history.csv").is_file()
    else:
        assert "resume: NOT resuming" in said and not runs.exists()


def test_train_notebook_stops_plainly_with_two_candidate_outputs(tmp_path, monkeypatch):
    import shutil

    inputs = tmp_path / "input"
    for layout in ("notebooks/me/birdclef-2023-sed-train", "birdclef-2023-sed-train"):
        (inputs / layout / "runs" / "finetune").mkdir(parents=True)
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(inputs))
    code = _train_resume_part().replace("from lib.paths import find_notebook_output\n", "")
    names = {"RESUME_FROM": "birdclef-2023-sed-train", "RUNS": tmp_path / "runs"}
    with pytest.raises(AmbiguousInputError) as caught:  # not swallowed as "nothing attached"
        exec(code, names | {"find_notebook_output": find_notebook_output, "shutil": shutil})
    assert str(inputs / "notebooks" / "me" / "birdclef-2023-sed-train") in str(caught.value)
    assert str(inputs / "birdclef-2023-sed-train") in str(caught.value)
    assert not (tmp_path / "runs").exists()


def test_per_year_slugs_keep_2023s_values():
    from lib.competitions import DEFAULT_COMPETITION, PROFILES

    assert paths.COMPETITION_SLUG == DEFAULT_COMPETITION
    assert paths.MODELS_DATASET_SLUG == "birdclef-2023-sed-models"
    assert paths.WHEELS_DATASET_SLUG == "birdclef-2023-onnxruntime-wheels"
    assert paths.models_dataset_slug("birdclef-2025") == "birdclef-2025-sed-models"
    assert paths.wheels_dataset_slug("birdclef-2026") == "birdclef-2026-onnxruntime-wheels"
    assert len({paths.models_dataset_slug(slug) for slug in PROFILES}) == len(PROFILES)


def test_find_competition_takes_the_years_slug(tmp_path):
    (tmp_path / "competitions" / "birdclef-2025").mkdir(parents=True)
    assert find_competition(tmp_path, slug="birdclef-2025") == (
        tmp_path / "competitions" / "birdclef-2025"
    )
    with pytest.raises(FileNotFoundError, match="birdclef-2023"):
        find_competition(tmp_path)  # the default is 2023's, not whatever is attached
