"""build_kernels.py: the command line (what users type) over the workbench package."""

from __future__ import annotations

import json

import pytest
from workbench_support import build_real_table, tree_bytes

import build_kernels as bk
import workbench.rehearsal
from lib.competitions import PROFILES
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
    assert seen["options"].kaggle_image is None  # the builder's venv unless asked


def test_kaggle_image_reaches_the_rehearsal_and_needs_rehearse(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(
        workbench.rehearsal, "rehearse",
        lambda folders, options: seen.update(options=options) or RehearsalResult(1, 1, 1, 1, 1),
    )  # fmt: skip
    argv = ["--out", str(tmp_path / "b"), "--wheel-cache", str(tmp_path / "c"), "--owner", "x",
            "--kaggle-image", "next"]  # fmt: skip
    assert bk.main(argv) == 1 and "add --rehearse" in capsys.readouterr().err
    assert bk.main([*argv, "--rehearse", "--hard"]) == 0
    assert seen["options"].kaggle_image == "next" and seen["options"].hard


def test_unknown_kaggle_image_fails_before_the_rehearsal_starts(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "b"), "--wheel-cache", str(tmp_path / "c"), "--owner", "x",
            "--rehearse", "--kaggle-image", "colab", "--workdir", str(tmp_path / "w")]  # fmt: skip
    assert bk.main(argv) == 1
    assert "--kaggle-image colab: not in" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("argv", "pinning"), [([], "original"), (["--image-pinning", "latest"], "latest")]
)
def test_image_pinning_is_written_into_both_kernels(tmp_path, argv, pinning):
    out = tmp_path / "b"
    assert (
        bk.main(["--out", str(out), "--wheel-cache", str(tmp_path / "c"), "--owner", "x", *argv])
        == 0
    )
    for name in bk.KERNELS:
        meta = json.loads((out / name / "kernel-metadata.json").read_text())
        assert meta["docker_image_pinning_type"] == pinning


def test_image_pinning_rejects_what_kaggle_rejects(capsys):
    with pytest.raises(SystemExit):
        bk.parse_args(["--image-pinning", "newest"])
    assert "invalid choice: 'newest'" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        bk.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--kernels-dir", "--lib-dir", "--out", "--owner", "--models-from", "--wheels",
                   "--wheel-cache", "--rehearse", "--workdir", "--rehearse-config",
                   "--rehearse-spec", "--cell-timeout", "--min-score", "--resume",
                   "--no-pretrain-sources", "--public", "--kaggle-image",
                   "--image-pinning"):  # fmt: skip
        assert option in text
    for command in ("push", "status", "fetch", "submit"):
        with pytest.raises(SystemExit):
            bk.main([command, "--help"])
        text = capsys.readouterr().out
        assert f"build_kernels.py {command}" in text and "--timeout" in text


def test_round_trip_commands_without_credentials_say_how_to_set_them(tmp_path, monkeypatch, capsys):
    """No Kaggle call is made without a user name; the build itself needs none."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    assert bk.main(["status", "train", "--out", str(tmp_path / "build")]) == 1
    err = capsys.readouterr().err
    assert "no Kaggle user name" in err and "KAGGLE_API_TOKEN" in err and "kaggle.json" in err


def test_tables_are_the_builders(tmp_path):
    folders, out = build_real_table(tmp_path)
    assert set(folders) == set(bk.KERNELS)
    assert {p.name for p in out.iterdir()} == set(bk.KERNELS) | set(bk.DATASETS)


def build_cli(tmp_path, out: str, *argv: str):
    """`build_kernels.py [argv]` into tmp_path/out as owner me; the out folder."""
    common = ["--out", str(tmp_path / out), "--wheel-cache", str(tmp_path / "c"), "--owner", "me"]
    assert bk.main([*common, *argv]) == 0
    return tmp_path / out


def kernel_meta(out, name: str) -> dict:
    return json.loads((out / name / "kernel-metadata.json").read_text())


def settings_line(out, name: str) -> str:
    nb = json.loads((out / name / f"{name}.ipynb").read_text())
    lines = [ln for c in nb["cells"] for ln in "".join(c["source"]).splitlines()]
    (line,) = [ln for ln in lines if ln.startswith("COMPETITION = ")]
    return line


@pytest.mark.parametrize("slug", list(PROFILES))
def test_each_competition_builds_its_ids_sources_datasets_and_setting(tmp_path, slug):
    out = build_cli(tmp_path, "b", "--competition", slug)
    year = PROFILES[slug]
    train, infer = kernel_meta(out, "train"), kernel_meta(out, "infer")
    assert train["id"] == f"me/{slug}-sed-train" and infer["id"] == f"me/{slug}-sed-infer"
    assert train["title"] == f"{year.title} SED Train" and year.title[-4:] in infer["title"]
    older = [s for s in year.pretrain_sources if s != "xeno-canto-extended"]
    assert train["competition_sources"] == [slug, *reversed(older)]  # the year, then oldest first
    assert infer["competition_sources"] == [slug]
    assert infer["dataset_sources"] == [f"me/{slug}-sed-models", f"me/{slug}-onnxruntime-wheels"]
    for folder, suffix in (("models", "sed-models"), ("wheels", "onnxruntime-wheels")):
        meta = json.loads((out / folder / "dataset-metadata.json").read_text())
        assert meta["id"] == f"me/{slug}-{suffix}"
    for name in ("train", "infer"):
        line = settings_line(out, name)
        assert line.split("#")[0].strip() == f'COMPETITION = "{slug}"'
    assert json.loads((out / "build.json").read_text()) == {"competition": slug}
    # the training notebook resumes from its own kernel's output by default
    namespace = {}
    exec(settings_line(out, "train").split("#")[0], namespace)
    nb = json.loads((out / "train" / "train.ipynb").read_text())
    (resume,) = [ln for c in nb["cells"] for ln in "".join(c["source"]).splitlines()
                 if ln.startswith("RESUME_FROM = ")]  # fmt: skip
    exec(resume, namespace)
    assert namespace["RESUME_FROM"] == train["id"].split("/")[1]


def test_2023_metadata_is_what_the_toolkit_always_built(tmp_path):
    out = build_cli(tmp_path, "b")
    train = kernel_meta(out, "train")
    assert (train["id"], train["title"]) == (
        "me/birdclef-2023-sed-train",
        "BirdCLEF 2023 SED Train",
    )
    assert train["competition_sources"] == [
        "birdclef-2023",
        "birdsong-recognition",
        "birdclef-2021",
        "birdclef-2022",
    ]
    assert train["dataset_sources"] == [
        "rohanrao/xeno-canto-bird-recordings-extended-a-m",
        "rohanrao/xeno-canto-bird-recordings-extended-n-z",
    ]
    models = json.loads((out / "models" / "dataset-metadata.json").read_text())
    assert (models["id"], models["title"]) == (
        "me/birdclef-2023-sed-models",
        "BirdCLEF 2023 SED Models",
    )


def test_default_build_is_the_2023_build_byte_for_byte(tmp_path):
    default = tree_bytes(build_cli(tmp_path, "default"))
    explicit = tree_bytes(build_cli(tmp_path, "explicit", "--competition", "birdclef-2023"))
    assert default == explicit and "train/train.ipynb" in default
    other = tree_bytes(build_cli(tmp_path, "other", "--competition", "birdclef-2026"))
    assert other["train/train.ipynb"] != default["train/train.ipynb"]


def test_unknown_competition_lists_the_known_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bk.main(["--competition", "birdclef-2030", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "birdclef-2030" in err
    assert all(slug in err for slug in PROFILES)
    assert not (tmp_path / "b").exists()


def test_min_score_defaults_follow_the_metric(tmp_path, monkeypatch, capsys):
    """ROC-AUC years get their own bar; a 0.85 passes there and fails 2023's padded cmAP."""
    monkeypatch.setattr(
        workbench.rehearsal, "rehearse", lambda folders, options: RehearsalResult(0.85, 1, 1, 1, 1)
    )
    argv = ["--out", str(tmp_path / "b"), "--wheel-cache", str(tmp_path / "c"), "--owner", "x",
            "--rehearse", "--workdir", str(tmp_path / "w")]  # fmt: skip
    assert bk.main([*argv, "--competition", "birdclef-2025"]) == 0
    assert "rehearsal passed: ROC-AUC 0.8500 >= 0.7" in capsys.readouterr().out
    assert bk.main(argv) == 1
    assert "padded cmAP 0.8500 < --min-score 0.9" in capsys.readouterr().err
