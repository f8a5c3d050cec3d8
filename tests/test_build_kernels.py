"""build_kernels.py: the command line (what users type) over the workbench package."""

from __future__ import annotations

import json

import pytest
from workbench_support import build_real_table

import build_kernels as bk
import workbench.rehearsal
from workbench.rehearsal import RehearsalResult


def test_plain_build_writes_dataset_metadata_even_without_kernels(tmp_path, capsys):
    empty = tmp_path / "kernels"
    empty.mkdir()
    assert bk.main(["--kernels-dir", str(empty), "--out", str(tmp_path / "build"),
                    "--wheel-cache", str(tmp_path / "cache"), "--owner", "me"]) == 0  # fmt: skip
    assert (tmp_path / "build" / "models" / "dataset-metadata.json").is_file()
    assert (tmp_path / "build" / "wheels" / "dataset-metadata.json").is_file()
    assert "--wheels" in capsys.readouterr().out  # says how to get the wheels


def test_plain_build_of_the_real_kernels_matches_build(tmp_path):
    """`python build_kernels.py` builds what workbench.build.build builds with the tables."""
    argv = ["--out", str(tmp_path / "cli"), "--wheel-cache", str(tmp_path / "c"), "--owner", "x"]
    assert bk.main(argv) == 0
    folders = bk.build_from_args(bk.parse_args([*argv[:1], str(tmp_path / "api"), *argv[2:]]))
    for name in bk.KERNELS:
        cli = (tmp_path / "cli" / name / f"{name}.ipynb").read_bytes()
        assert cli == (folders[name] / f"{name}.ipynb").read_bytes()


def test_models_from_option_fills_the_models_dataset(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "fold0.onnx").write_text("x")
    argv = ["--out", str(tmp_path / "build"), "--wheel-cache", str(tmp_path / "c"),
            "--owner", "x", "--models-from", str(tmp_path / "run")]  # fmt: skip
    assert bk.main(argv) == 0
    assert (tmp_path / "build" / "models" / "fold0.onnx").is_file()


def test_main_reports_errors_with_exit_code(tmp_path, capsys):
    code = bk.main(["--kernels-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert code == 1 and "kernels folder not found" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [("{oops", "not JSON"), ("[1]", "JSON object")])
def test_rehearsal_overrides_must_be_json_objects(text, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bk.parse_args(["--rehearse-config", text])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(("score", "code"), [(0.89, 1), (0.91, 0)])
def test_rehearse_exits_1_below_min_score(tmp_path, monkeypatch, capsys, score, code):
    seen = {}

    def fake_rehearse(folders, options):
        seen.update(folders=folders, options=options)
        return RehearsalResult(score, 48, 1.0, 1.0, 1.0)

    monkeypatch.setattr(workbench.rehearsal, "rehearse", fake_rehearse)
    argv = ["--out", str(tmp_path / "b"), "--wheel-cache", str(tmp_path / "c"), "--owner", "x",
            "--rehearse", "--min-score", "0.9", "--workdir", str(tmp_path / "w"),
            "--rehearse-config", json.dumps({"epochs": 2}), "--cell-timeout", "60"]  # fmt: skip
    assert bk.main(argv) == code
    captured = capsys.readouterr()
    assert ("rehearsal FAILED" in captured.err) == (code == 1)
    assert sorted(seen["folders"]) == sorted(bk.KERNELS)
    assert seen["options"].config_overrides == {"epochs": 2}
    assert seen["options"].cell_timeout == 60 and seen["options"].workdir == tmp_path / "w"


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        bk.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--kernels-dir", "--lib-dir", "--out", "--owner", "--models-from", "--wheels",
                   "--wheel-cache", "--rehearse", "--workdir", "--rehearse-config",
                   "--rehearse-spec", "--cell-timeout", "--min-score"):  # fmt: skip
        assert option in text


def test_tables_are_the_builders(tmp_path):
    folders, out = build_real_table(tmp_path)
    assert set(folders) == set(bk.KERNELS)
    assert {p.name for p in out.iterdir()} == set(bk.KERNELS) | set(bk.DATASETS)
