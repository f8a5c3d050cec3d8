"""The Kaggle round trip against tests/kaggle_stub.py, through the real kaggle CLI (2.2.5).

Every failure Kaggle inflicts must end in exit code 1 (2: still waiting at the timeout) and a
message naming the cause and the fix; nothing may print or write a credential.
"""

from __future__ import annotations

import json
import shutil

import pytest

import build_kernels as bk
from tests.kaggle_stub import Faults, KaggleStub
from workbench.build import build
from workbench.metadata import MACHINE_SHAPE_T4X2
from workbench.owner import OWNER_PLACEHOLDER
from workbench.roundtrip import Waits, run_command

FAST = Waits(poll=0.05, datasets=5.0, kernel=5.0, submission=5.0)
TRAIN, INFER = "birdclef-2023-sed-train", "birdclef-2023-sed-infer"
MODELS, WHEELS = "birdclef-2023-sed-models", "birdclef-2023-onnxruntime-wheels"
CONFIG = {"n_folds": 5, "folds": [], "backbone": "tiny"}


def train_output(folds=range(5), classes=True) -> dict[str, bytes]:
    """What a complete training run leaves in /kaggle/working (checkpoints included)."""
    files = {f"fold{k}.onnx": b"onnx" + bytes([k]) for k in folds}
    files |= {"config.json": json.dumps(CONFIG).encode(), "export.json": b"{}"}
    if classes:
        files["classes.json"] = b'["a", "b"]'
    files["runs/finetune/fold0/best.pt"] = b"checkpoint that fetch must not download"
    return files


OUTPUTS = {TRAIN: train_output(), INFER: {"submission.csv": b"row_id,a,b\n"}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The real build, made without credentials: the placeholder owner."""
    out = tmp_path_factory.mktemp("build")
    build(
        kernels=bk.KERNELS, datasets=bk.DATASETS, kernels_dir=bk.REPO / "kernels",
        lib_dir=bk.REPO / "lib", out=out, wheel_cache=out / "no-wheels", environ={}, home=out,
    )  # fmt: skip
    (out / "wheels" / "onnxruntime-0-cp312-none-any.whl").write_bytes(b"wheel")
    return out


@pytest.fixture
def out(built, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(built, copy)
    return copy


def run(stub, tmp_path, out, command, name=None, credentials="kaggle.json", **kw):
    env = stub.cli_env(tmp_path / "home", credentials=credentials)
    lines = []
    code = run_command(command, out=out, name=name, waits=FAST, environ=env, say=lines.append, **kw)
    return code, "\n".join(lines)


def edit_metadata(folder, **changes):
    path = folder / "kernel-metadata.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_full_round_trip(out, tmp_path, capsys):
    """wheels -> train -> status -> fetch -> models -> infer -> status -> submit --wait."""
    with KaggleStub(kernel_outputs=OUTPUTS, faults=Faults(kernel_polls=0)) as stub:
        user = stub.username
        steps = [("push", "wheels"), ("push", "train"), ("status", "train"), ("fetch", None),
                 ("push", "models"), ("push", "infer"), ("status", "infer")]  # fmt: skip
        for command, name in steps:
            code, said = run(stub, tmp_path, out, command, name)
            assert code == 0, f"{command} {name}: {said}\n{capsys.readouterr().err}"
        code, said = run(stub, tmp_path, out, "submit", wait=True)
        assert code == 0, capsys.readouterr().err
        assert "public score: 0.81234" in said
    assert sorted(stub.datasets[f"{user}/{MODELS}"][0].files) == sorted(
        ["classes.json", "config.json", "export.json"] + [f"fold{k}.onnx" for k in range(5)]
    )
    train = stub.kernel_request(f"{user}/{TRAIN}")
    assert train["machineShape"] == MACHINE_SHAPE_T4X2 and train["enableGpu"] is True
    assert set(train["competitionDataSources"]) >= {"birdclef-2023", "birdsong-recognition"}
    infer = stub.kernel_request(f"{user}/{INFER}")
    assert infer["enableInternet"] is False and "machineShape" not in infer
    assert infer["datasetDataSources"] == [f"{user}/{MODELS}", f"{user}/{WHEELS}"]
    # the kaggle CLI forwards the build's pinning (kernel-metadata.json) in its push request
    assert train["dockerImagePinningType"] == infer["dockerImagePinningType"] == "original"
    (submission,) = stub.submissions.values()
    assert (submission.kernel, submission.version, submission.state) == (
        f"{user}/{INFER}",
        1,
        "COMPLETE",
    )
    assert "classes.json" in stub.downloads
    assert not [name for name in stub.downloads if name.endswith(".pt")]  # no checkpoints
    meta = json.loads((out / "train" / "kernel-metadata.json").read_text())
    assert meta["id"] == f"{user}/{TRAIN}"  # the placeholder was replaced by the owner


def test_push_with_an_access_token_only(out, tmp_path, capsys):
    """No user name anywhere: Kaggle's answer for the token names the owner; no token leaks."""
    with KaggleStub() as stub:
        code, said = run(stub, tmp_path, out, "push", "wheels", credentials="token")
        assert code == 0, capsys.readouterr().err
        assert f"Kaggle user: {stub.username} (from Kaggle's answer" in said
        assert f"{stub.username}/{WHEELS}" in stub.datasets
        code, said = run(stub, tmp_path, out, "push", "wheels", credentials="token-file")
        assert code == 0 and "adding a version" in said
        printed = said + capsys.readouterr().out + capsys.readouterr().err
        for path in out.rglob("*"):
            if path.is_file():
                assert stub.token.encode() not in path.read_bytes(), path
        assert stub.token not in printed and stub.key not in printed


def test_push_error_exits_1_with_the_servers_message(out, tmp_path, capsys):
    faults = Faults(push_error="Notebook text is too large")
    with KaggleStub(faults=faults) as stub:
        edit_metadata(out / "train", competition_sources=["birdclef-2023"], dataset_sources=[])
        code, _ = run(stub, tmp_path, out, "push", "train")
    err = capsys.readouterr().err
    assert code == 1 and "Notebook text is too large" in err and "Fix:" in err


def test_dataset_creation_error_exits_1(out, tmp_path, capsys):
    with KaggleStub(faults=Faults(dataset_error="Title already in use")) as stub:
        code, _ = run(stub, tmp_path, out, "push", "wheels")
    err = capsys.readouterr().err
    assert code == 1 and "Title already in use" in err and "Fix:" in err


def test_unaccepted_rules_are_refused_before_the_push(out, tmp_path, capsys):
    with KaggleStub(faults=Faults(unaccepted_competitions={"birdclef-2021"})) as stub:
        code, _ = run(stub, tmp_path, out, "push", "train")
    err = capsys.readouterr().err
    assert code == 1
    assert "accept its rules at https://www.kaggle.com/competitions/birdclef-2021/rules" in err
    assert "SaveKernel" not in " ".join(stub.calls)  # nothing half-pushed


def test_a_source_dropped_by_the_push_itself_exits_1(out, tmp_path, capsys):
    """The check passed, but the push drops the competition: the CLI prints it and exits 0."""
    faults = Faults(unaccepted_competitions={"birdclef-2022"})
    with KaggleStub(faults=faults) as stub:
        stub.api_ListDataFiles = lambda user, body: {"files": []}  # files readable anyway
        edit_metadata(out / "train", competition_sources=["birdclef-2023", "birdclef-2022"])
        edit_metadata(out / "train", dataset_sources=[])
        code, _ = run(stub, tmp_path, out, "push", "train")
    err = capsys.readouterr().err
    assert code == 1 and "saved version 1 without them" in err
    assert "https://www.kaggle.com/competitions/birdclef-2022/rules" in err


def test_unknown_dataset_source_exits_1(out, tmp_path, capsys):
    with KaggleStub() as stub:
        edit_metadata(
            out / "train", dataset_sources=["nobody/no-such-dataset"], competition_sources=[]
        )
        code, _ = run(stub, tmp_path, out, "push", "train")
    err = capsys.readouterr().err
    assert code == 1 and "'nobody/no-such-dataset'" in err and "check the name" in err


def test_resume_before_any_run_names_the_fix(out, tmp_path, capsys):
    with KaggleStub() as stub:
        edit_metadata(
            out / "train", competition_sources=[], dataset_sources=[],
            kernel_sources=[f"{OWNER_PLACEHOLDER}/{TRAIN}"],
        )  # fmt: skip
        code, _ = run(stub, tmp_path, out, "push", "train")
    err = capsys.readouterr().err
    assert code == 1 and f"{stub.username}/{TRAIN}" in err and "without --resume" in err


def test_rejected_credentials_exit_1_with_how_to_set_them(out, tmp_path, capsys):
    with KaggleStub(faults=Faults(bad_credentials=True)) as stub:
        code, _ = run(stub, tmp_path, out, "push", "wheels")
        err = capsys.readouterr().err
        assert code == 1 and "did not accept your credentials" in err and "KAGGLE_API_TOKEN" in err
        code, _ = run(stub, tmp_path / "token", out, "push", "wheels", credentials="token")
    err = capsys.readouterr().err
    assert code == 1 and "did not accept the access token in $KAGGLE_API_TOKEN" in err
    assert "kaggle.json" in err  # the fix lists every way to set credentials


def test_kernel_ending_in_error_shows_the_log_tail(out, tmp_path, capsys):
    log = "loading data\nTraceback (most recent call last):\nValueError: no fold 3"
    with KaggleStub() as stub:
        stub.add_kernel_version(f"{stub.username}/{TRAIN}", "QUEUED", error_log=log, polls=1)
        code, said = run(stub, tmp_path, out, "status", "train")
    err = capsys.readouterr().err
    assert code == 1 and "ended in ERROR" in err and "ValueError: no fold 3" in err
    assert "Fix:" in err and "running" in said  # progress was shown while it ran


def test_status_times_out_with_exit_2(out, tmp_path, capsys):
    with KaggleStub() as stub:
        stub.add_kernel_version(f"{stub.username}/{TRAIN}", "QUEUED", polls=10**6)
        env = stub.cli_env(tmp_path / "home")
        code = run_command(
            "status", out=out, name="train", waits=Waits(poll=0.05, kernel=0.5), environ=env,
            say=lambda line: None,
        )  # fmt: skip
    assert code == 2 and "status train` again" in capsys.readouterr().err


def test_infer_waits_for_datasets_still_processing(out, tmp_path, capsys):
    with KaggleStub() as stub:
        stub.add_dataset(f"{stub.username}/{WHEELS}", polls=2)
        stub.add_dataset(f"{stub.username}/{MODELS}")
        code, said = run(stub, tmp_path, out, "push", "infer")
        assert code == 0, capsys.readouterr().err
        assert "waiting for datasets" in said and "(blobs_received)" in said
        assert stub.calls.index("kernels.KernelsApiService/SaveKernel") > max(
            i for i, call in enumerate(stub.calls) if call.endswith("GetDatasetStatus")
        )  # pushed only once ready
        stub.datasets[f"{stub.username}/{WHEELS}"][-1].polls_left = 10**6
        env = stub.cli_env(tmp_path / "home")
        code = run_command(
            "push", out=out, name="infer", waits=Waits(poll=0.05, datasets=0.3), environ=env,
            say=lambda line: None,
        )  # fmt: skip
    assert code == 2 and "still processing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "output, missing",
    [
        (train_output(folds=[0, 1, 2, 4]), "fold3.onnx"),
        (train_output(classes=False), "classes.json"),
    ],
)
def test_fetch_refuses_an_incomplete_output(out, tmp_path, capsys, output, missing):
    with KaggleStub() as stub:
        stub.add_kernel_version(f"{stub.username}/{TRAIN}", outputs=output)
        code, _ = run(stub, tmp_path, out, "fetch")
    err = capsys.readouterr().err
    assert code == 1 and f"lacks {missing}" in err and "Fix:" in err
    assert not list((out / "models").glob("*.onnx"))  # nothing half-copied


def test_submit_takes_the_latest_complete_version_and_reports_a_scoring_error(
    out, tmp_path, capsys
):
    faults = Faults(submission_error="Notebook Timeout")
    with KaggleStub(kernel_outputs=OUTPUTS, faults=faults) as stub:
        stub.add_kernel_version(f"{stub.username}/{INFER}")
        stub.add_kernel_version(f"{stub.username}/{INFER}", "RUNNING", polls=10**6)
        code, said = run(stub, tmp_path, out, "submit", wait=True)
    err = capsys.readouterr().err
    assert "version 2 is running: not submitted" in said
    assert [s.version for s in stub.submissions.values()] == [1]
    assert code == 1 and "Notebook Timeout" in err and "failed to score" in err


def test_submit_a_named_version_that_has_not_completed_exits_1(out, tmp_path, capsys):
    with KaggleStub(kernel_outputs=OUTPUTS) as stub:
        stub.add_kernel_version(f"{stub.username}/{INFER}")
        stub.add_kernel_version(f"{stub.username}/{INFER}", "RUNNING", polls=10**6)
        code, _ = run(stub, tmp_path, out, "submit", version=2)
    assert code == 1 and "version 2 is running, not complete" in capsys.readouterr().err
    assert not stub.submissions


def test_a_build_for_another_user_is_not_pushed(out, tmp_path, capsys):
    with KaggleStub() as stub:
        meta = json.loads((out / "wheels" / "dataset-metadata.json").read_text())
        meta["id"] = "alice/" + meta["id"].split("/")[1]
        (out / "wheels" / "dataset-metadata.json").write_text(json.dumps(meta))
        code, _ = run(stub, tmp_path, out, "push", "wheels")
    err = capsys.readouterr().err
    assert code == 1 and "built for Kaggle user 'alice'" in err and "--owner stub-user" in err
    assert stub.calls == []  # refused before asking Kaggle anything


def test_infer_before_its_datasets_exist_names_the_push_to_run(out, tmp_path, capsys):
    with KaggleStub() as stub:
        stub.add_dataset(f"{stub.username}/{WHEELS}")
        code, _ = run(stub, tmp_path, out, "push", "infer")
    err = capsys.readouterr().err
    assert code == 1 and f"{stub.username}/{MODELS} is not on Kaggle" in err
    assert "python build_kernels.py push models" in err
    assert "kernels.KernelsApiService/SaveKernel" not in stub.calls


def test_push_and_submit_use_the_competition_the_build_was_made_for(tmp_path, capsys):
    """A --competition birdclef-2025 build: the push attaches 2025 and its predecessors, the
    submission goes to birdclef-2025 (read back from the build's build.json)."""
    out = tmp_path / "build"
    argv = ["--competition", "birdclef-2025", "--out", str(out), "--wheel-cache",
            str(tmp_path / "no-wheels"), "--owner", OWNER_PLACEHOLDER]  # fmt: skip
    assert bk.main(argv) == 0
    (out / "wheels" / "onnxruntime-0-cp312-none-any.whl").write_bytes(b"wheel")
    train_ref, infer_ref = "birdclef-2025-sed-train", "birdclef-2025-sed-infer"
    outputs = {train_ref: train_output(), infer_ref: OUTPUTS[INFER]}
    with KaggleStub(kernel_outputs=outputs, faults=Faults(kernel_polls=0)) as stub:
        for command, name in [("push", "wheels"), ("push", "train"), ("status", "train"),
                              ("fetch", None), ("push", "models"), ("push", "infer")]:  # fmt: skip
            code, said = run(stub, tmp_path, out, command, name)
            assert code == 0, f"{command} {name}: {said}\n{capsys.readouterr().err}"
        code, said = run(stub, tmp_path, out, "submit")
        assert code == 0, capsys.readouterr().err
    user = stub.username
    train = stub.kernel_request(f"{user}/{train_ref}")
    assert train["competitionDataSources"][0] == "birdclef-2025"
    assert {"birdclef-2024", "birdclef-2023"} <= set(train["competitionDataSources"])
    infer = stub.kernel_request(f"{user}/{infer_ref}")
    assert infer["competitionDataSources"] == ["birdclef-2025"]
    assert infer["datasetDataSources"] == [
        f"{user}/birdclef-2025-sed-models",
        f"{user}/birdclef-2025-onnxruntime-wheels",
    ]
    (submission,) = stub.submissions.values()
    assert submission.competition == "birdclef-2025" and submission.kernel == f"{user}/{infer_ref}"
    assert "to birdclef-2025" in said
