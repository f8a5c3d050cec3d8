"""lib.atomic: a crash in the middle of a write leaves the old file and no temporary file."""

from __future__ import annotations

import pytest

from lib.atomic import AtomicTarget, atomic_write


def test_a_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "model.onnx"
    atomic_write(path, lambda tmp: tmp.write_text("old"))
    seen = []

    def crash(tmp):
        seen.append(tmp)
        tmp.write_text("half of the new")
        raise KeyboardInterrupt("killed while writing")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert seen[0].parent == tmp_path and seen[0].suffix == ".onnx"  # writers see the format
    assert seen[0].name.startswith("model.tmp-")


def test_a_write_replaces_the_file_and_makes_its_folder(tmp_path):
    path = tmp_path / "new" / "folder" / "x.json"
    atomic_write(path, lambda tmp: tmp.write_text("1"))
    atomic_write(path, lambda tmp: tmp.write_text("2"))
    assert path.read_text() == "2" and [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_streaming_target_commits_or_discards(tmp_path):
    """The submission's way: keep the target open, write over time, then commit or discard."""
    target = AtomicTarget(tmp_path / "submission.csv")
    assert target.tmp != target.path and target.tmp.suffix == ".csv"
    with open(target.tmp, "w") as handle:
        handle.write("row_id\n")
    assert not target.path.exists()  # nothing at the final path while writing
    assert target.commit() == target.path and target.path.read_text() == "row_id\n"
    other = AtomicTarget(tmp_path / "other.csv")
    other.tmp.write_text("partial")
    other.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]


def test_two_targets_for_one_path_do_not_share_a_temp_name(tmp_path):
    assert AtomicTarget(tmp_path / "a.pt").tmp != AtomicTarget(tmp_path / "a.pt").tmp
