"""workbench.kaggle_cli: every failure the kaggle CLI only prints becomes an error; credentials
never show. Texts below are what kaggle 2.2.5 prints (its format strings are checked too)."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from tests.kaggle_stub import Faults, KaggleStub
from workbench import kaggle_cli as kc

PUSHED = (
    "Kernel version 3 successfully pushed.  Please check progress at "
    "https://www.kaggle.com/code/me/birdclef-2023-sed-train\n"
)


def test_the_messages_read_are_kaggles_own():
    """A kaggle whose wording changed would make these checks silently pass: pin the wording."""
    from kaggle.api.kaggle_api_extended import KaggleApi

    push = inspect.getsource(KaggleApi.kernels_push_cli)
    for text in ("Kernel push error: ", "not valid competition sources", "successfully %s"):
        assert text in push
    create = inspect.getsource(KaggleApi.dataset_create_new_cli)
    version = inspect.getsource(KaggleApi.dataset_create_version_cli)
    assert "Dataset creation error: " in create and "Dataset version creation error: " in version
    assert "Skipping folder: " in inspect.getsource(KaggleApi._upload_file_or_folder)
    assert 'has status "%s"' in inspect.getsource(KaggleApi.kernels_status_cli)
    assert "Submission ref: %s" in inspect.getsource(KaggleApi.competition_submit_cli)
    requirements = (Path(__file__).parents[1] / "requirements.txt").read_text()
    assert f"kaggle=={kc.KAGGLE_CLI_VERSION}" in requirements


def test_check_push_reads_version_and_url():
    assert kc.check_push("some warning\n" + PUSHED) == kc.Pushed(
        3, "https://www.kaggle.com/code/me/birdclef-2023-sed-train"
    )


def test_check_push_raises_the_servers_message():
    with pytest.raises(kc.KaggleError, match="Notebook too large.*\nFix:"):
        kc.check_push("Kernel push error: Notebook too large\n")


def test_check_push_names_each_dropped_source_and_its_fix():
    text = (
        "The following are not valid dataset sources and could not be added to the kernel: "
        "['x/gone']\nThe following are not valid competition sources and could not be added "
        "to the kernel: ['birdclef-2021', 'birdclef-2022']\n" + PUSHED
    )
    with pytest.raises(kc.KaggleError) as err:
        kc.check_push(text)
    message = str(err.value)
    assert "saved version 3 without them" in message and "'x/gone'" in message
    for slug in ("birdclef-2021", "birdclef-2022"):
        assert f"https://www.kaggle.com/competitions/{slug}/rules" in message


def test_check_push_without_a_version_is_an_error():
    with pytest.raises(kc.KaggleError, match="no version"):
        kc.check_push("something else\n")


@pytest.mark.parametrize(
    "text, match",
    [
        ("Dataset creation error: Title in use\n", "Title in use"),
        ("Dataset version creation error: Quota\n", "Quota"),
        (
            "Skipping folder: sub; use '--dir-mode' to upload folders\nYour private Dataset is "
            "being created. Please check progress at https://k/d\n",
            "sub-folder",
        ),
        ("nothing useful\n", "no confirmation"),
    ],
)
def test_check_dataset_upload_errors(text, match):
    with pytest.raises(kc.KaggleError, match=match):
        kc.check_dataset_upload(text)


def test_check_dataset_upload_url():
    text = "Dataset version is being created. Please check progress at https://k/me/d\n"
    assert kc.check_dataset_upload(text) == "https://k/me/d"


def test_parse_kernel_state_and_submission():
    assert (
        kc.parse_kernel_state('me/k has status "KernelWorkerStatus.RUNNING"\n').state == "RUNNING"
    )
    failed = kc.parse_kernel_state('me/k has status "ERROR"\nFailure message: "boom"\n')
    assert failed == kc.KernelState("ERROR", "boom")
    block = "Submission Ref: 12\nStatus:         ERROR\nError:          Timeout\nPublic Score:\n"
    assert kc.parse_submission(block) == kc.SubmissionState(12, "ERROR", None, "Timeout")
    with pytest.raises(kc.KaggleError):
        kc.parse_kernel_state("???")


def test_failure_classification():
    def result(stderr, stdout=""):
        return kc.CliResult(("kaggle",), 1, stdout, stderr)

    auth = kc.failure("x", result("", "Authentication required to call the Kaggle API.\n"))
    assert isinstance(auth, kc.KaggleAuthError) and "KAGGLE_API_TOKEN" in str(auth)
    rejected = kc.failure("x", result("Authentication required"), have_credentials=True)
    assert isinstance(rejected, kc.KaggleAuthError) and "did not accept" in str(rejected)
    assert isinstance(kc.failure("x", result("401 Client Error: Unauthorized")), kc.KaggleAuthError)
    missing = kc.failure("x", result("Not here\n\nThe resource was not found. Check ..."))
    assert isinstance(missing, kc.KaggleNotFound)
    other = kc.failure("x", result("  5%|#  | 1/20\nValueError: bad folder"))
    assert type(other) is kc.KaggleError and "bad folder" in str(other) and "%|" not in str(other)


def test_log_tail_reads_kaggles_json_log():
    log = json.dumps(
        [{"stream_name": "stderr", "time": 1, "data": f"line {i}\n"} for i in range(50)]
    )
    assert kc.log_tail(log, 3) == "line 47\nline 48\nline 49"
    assert kc.log_tail("plain\ntext", 1) == "text"


def test_secrets_are_found_and_blanked(tmp_path):
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "access_token").write_text("tok-from-file\n")
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "kaggle.json").write_text('{"username": "me", "key": "key-in-json"}')
    (tmp_path / ".kaggle" / "credentials.json").write_text('{"refresh_token": "oauth-refresh"}')
    env = {
        "KAGGLE_KEY": "key-in-env",
        "KAGGLE_API_TOKEN": "tok-in-env",
        "KAGGLE_CONFIG_DIR": str(config),
    }
    secrets = kc.secrets_of(env, tmp_path)
    expected = {"tok-from-file", "key-in-json", "key-in-env", "tok-in-env", "oauth-refresh"}
    assert set(secrets) == expected
    text = "a key-in-json b tok-in-env c"
    assert kc.redact(text, secrets) == "a *** b *** c"


def test_a_wrong_kaggle_version_is_refused(monkeypatch):
    monkeypatch.setattr(kc, "KAGGLE_CLI_VERSION", "0.0.1")
    with pytest.raises(kc.KaggleError, match="pip install -r requirements.txt"):
        kc.KaggleCli({}).check_version()


@pytest.mark.parametrize("credentials", ["kaggle.json", "env", "token", "token-file"])
def test_whoami_with_each_kind_of_credentials(tmp_path, credentials):
    with KaggleStub() as stub:
        cli = kc.KaggleCli(stub.cli_env(tmp_path, credentials=credentials))
        assert cli.whoami() == stub.username


def test_without_credentials_the_cli_says_how_to_set_them(tmp_path):
    with KaggleStub() as stub:
        cli = kc.KaggleCli(stub.cli_env(tmp_path, credentials="none"))
        with pytest.raises(kc.KaggleAuthError, match="kaggle.json"):
            cli.dataset_status("me/some-dataset")


def test_probe_answers_each_question_in_one_process(tmp_path):
    faults = Faults(unaccepted_competitions={"birdclef-2021"})
    with KaggleStub(faults=faults) as stub:
        mine = f"{stub.username}/mine-dataset"
        stub.add_dataset(mine, polls=1)
        stub.add_kernel_version(f"{stub.username}/a-notebook")
        stub.add_kernel_version(f"{stub.username}/a-notebook", "ERROR", error_log="x")
        cli = kc.KaggleCli(stub.cli_env(tmp_path))
        answer = cli.probe(
            datasets=[mine, "nobody/missing-one"],
            competitions=["birdclef-2023", "birdclef-2021", "no-such-competition"],
            kernels=[f"{stub.username}/a-notebook"],
            versions=[f"{stub.username}/a-notebook"],
        )
    assert answer.datasets[mine] == {"ok": "blobs_received"}
    assert answer.datasets["nobody/missing-one"]["error"] == 404
    assert "ok" in answer.competitions["birdclef-2023"]
    assert answer.competitions["birdclef-2021"]["error"] == 403
    assert "accept" in answer.competitions["birdclef-2021"]["message"]
    assert answer.competitions["no-such-competition"]["error"] == 404
    assert answer.kernels[f"{stub.username}/a-notebook"] == {"ok": "ERROR"}
    versions = answer.versions[f"{stub.username}/a-notebook"]["ok"]
    assert versions == {"current": 2, "states": {"2": "ERROR", "1": "COMPLETE"}}
    assert [c for c in stub.calls if c.endswith("IntrospectToken")] == []


def test_no_credential_in_any_output(tmp_path):
    """A working and a failing call with each kind of secret, verbose mode asked for (it would
    print the Authorization header): no secret shows in anything we print or raise."""
    with KaggleStub() as stub:
        stub.add_dataset(f"{stub.username}/some-dataset")
        for credentials in ("kaggle.json", "token"):
            env = stub.cli_env(tmp_path / credentials, credentials=credentials) | {"VERBOSE": "1"}
            cli = kc.KaggleCli(env)
            texts = [cli.run("datasets", "status", f"{stub.username}/some-dataset", what="s").text]
            with pytest.raises(kc.KaggleError) as err:
                cli.run("kernels", "status", "x/nope-nope", what="status")
            texts.append(str(err.value))
            for text in texts:
                assert "Authorization" not in text
                assert not re.search(re.escape(stub.key) + "|" + re.escape(stub.token), text)
