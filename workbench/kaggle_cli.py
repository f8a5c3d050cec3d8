"""The pinned kaggle CLI, run as a subprocess, with every failure it reports turned into an error.

kaggle 2.2.5 exits 0 after several failures and only prints a line: `Kernel push error: ...`,
`Dataset creation error: ...`, `Dataset version creation error: ...`, `The following are not
valid competition sources and could not be added to the kernel: [...]` (the push "succeeds"
without them and the notebook fails on Kaggle), `Skipping folder: ...` (a dataset's sub-folder
left out). The strings below are kaggle 2.2.5's own (kaggle/api/kaggle_api_extended.py); every
one of them raises `KaggleError` here, with Kaggle's message, the cause and the fix.

Why a subprocess of `sys.executable -m kaggle` rather than `import kaggle`: it is exactly the
CLI a user runs (the kaggle pinned in requirements.txt, in this interpreter's environment, never
a `kaggle` found on PATH), and importing kaggle authenticates and fixes its configuration at
import time. Read-only questions (is this dataset ready, are these rules accepted, which version
completed) go to the same package's Python API in one subprocess (`probe`, kaggle_probe.py):
a notebook's current version number is not printed by any CLI command, and each CLI call pays
kaggle's import.

Credentials are the CLI's business: this module never reads a key or token except to blank it
out of every message it prints or raises (`secrets_of`).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KAGGLE_CLI_VERSION = "2.2.5"  # the CLI whose output this module reads; requirements.txt pins it
AUTH_FIX = (
    "set your Kaggle credentials: create a token at https://www.kaggle.com/settings/api, then "
    "either `export KAGGLE_API_TOKEN=<token>` (or save it to ~/.kaggle/access_token), or put "
    'kaggle.json ({"username": ..., "key": ...}) in ~/.kaggle/ with `chmod 600`, or '
    "`export KAGGLE_USERNAME=<name> KAGGLE_KEY=<key>`"
)
DROPPED_RE = re.compile(
    r"The following are not valid (tags|dataset sources|competition sources|kernel sources) "
    r"and could not be added to the (?:kernel|dataset): (\[.*\])"
)
PUSHED_RE = re.compile(
    r"Kernel version (\d+) successfully pushed\.\s+Please check progress at (\S+)"
)
KERNEL_STATUS_RE = re.compile(r'has status "(?:KernelWorkerStatus\.)?([A-Za-z_]+)"')
FAILURE_RE = re.compile(r'Failure message: "(.*)"', re.S)
SUBMISSION_REF_RE = re.compile(r"Submission ref: (\d+)")
FIELD_RE = re.compile(r"^([A-Za-z ]+):\s*(.*)$")
PROBE = Path(__file__).with_name("kaggle_probe.py")
QUESTION_TIMEOUT_S = 300  # a call that only asks (status, push of a notebook, submit)
TRANSFER_TIMEOUT_S = 4 * 3600  # uploads and downloads (the models dataset: about 100 MB)


class KaggleError(RuntimeError):
    """Kaggle (or the CLI) refused or failed; the message says what, why, and the fix."""


class KaggleAuthError(KaggleError):
    """Missing or rejected credentials."""


class KaggleNotFound(KaggleError):
    """The dataset, notebook, competition or submission does not exist (or is not visible)."""


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


@dataclass(frozen=True)
class Pushed:
    version: int
    url: str


@dataclass(frozen=True)
class KernelState:
    state: str  # QUEUED, RUNNING, COMPLETE, ERROR, CANCEL_REQUESTED, CANCEL_ACKNOWLEDGED, ...
    failure: str | None = None


@dataclass(frozen=True)
class Probe:
    """Answers per item: {"ok": value} or {"error": HTTP status, "message": kaggle's message}.

    datasets: status ("ready", ...); competitions: files readable (rules accepted); kernels:
    the latest run's state; versions: {"current": N, "states": {N: state, ...}}.
    """

    datasets: dict
    competitions: dict
    kernels: dict
    versions: dict


@dataclass(frozen=True)
class SubmissionState:
    ref: int
    state: str  # PENDING, COMPLETE, ERROR
    public_score: str | None = None
    error: str | None = None


def secrets_of(environ, home: Path) -> tuple[str, ...]:
    """The key and token strings the CLI may use (kaggle.json's key, $KAGGLE_KEY, access
    tokens, `kaggle auth login`'s tokens), so they can be blanked out of any text."""
    found = [environ.get("KAGGLE_KEY"), environ.get("KAGGLE_API_TOKEN")]
    token_env = environ.get("KAGGLE_API_TOKEN")
    files = [home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"]
    if token_env and Path(token_env).is_file():
        files.append(Path(token_env))
    for path in files:
        if path.is_file():
            found.append(path.read_text(errors="replace").strip())
    config_dirs = [environ.get("KAGGLE_CONFIG_DIR"), home / ".kaggle", home / ".config" / "kaggle"]
    for folder in filter(None, config_dirs):
        path = Path(folder) / "kaggle.json"
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(json.loads(path.read_text()).get("key"))
    with contextlib.suppress(OSError, ValueError, AttributeError):  # `kaggle auth login`
        oauth = json.loads((home / ".kaggle" / "credentials.json").read_text())
        found += [oauth.get("refresh_token"), oauth.get("access_token")]
    return tuple(sorted({s for s in found if isinstance(s, str) and len(s) >= 4}, key=len)[::-1])


def redact(text: str, secrets) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _message(result: CliResult) -> str:
    """What the CLI said, without tqdm's progress bars."""
    lines = [ln.rstrip() for ln in result.text.replace("\r", "\n").splitlines()]
    lines = [ln for ln in lines if ln.strip() and not re.search(r"\d+%\|", ln)]
    return "\n".join(lines[-15:])


def failure(what: str, result: CliResult, have_credentials: bool = False) -> KaggleError:
    """The error for a CLI call that exited non-zero, classified by what the CLI printed.

    kaggle prints the same help for missing and for rejected credentials:
    `have_credentials` (a key or token is set) tells them apart.
    """
    said = _message(result)
    if "Authentication required" in said and have_credentials:
        return KaggleAuthError(
            f"{what}: Kaggle did not accept your credentials (wrong, expired or revoked key or "
            f"token).\nFix: create a new token and {AUTH_FIX}."
        )
    if "Authentication required" in said:
        return KaggleAuthError(f"{what}: no Kaggle credentials found.\nFix: {AUTH_FIX}.")
    if re.search(r"\b401\b|Unauthenticated|Unauthorized", said):
        return KaggleAuthError(
            f"{what}: Kaggle rejected the credentials (401).\nFix: check them, or {AUTH_FIX}."
        )
    if "The resource was not found" in said or re.search(r"\b404\b", said):
        return KaggleNotFound(f"{what}: not found on Kaggle. kaggle said:\n{said}")
    return KaggleError(f"{what} failed (kaggle exited {result.code}). kaggle said:\n{said}")


def dropped_sources(text: str) -> dict[str, list[str]]:
    """{"competition sources": [...], ...}: what a push or dataset creation silently left out."""
    found: dict[str, list[str]] = {}
    for kind, listing in DROPPED_RE.findall(text):
        try:
            items = [str(item) for item in ast.literal_eval(listing)]
        except (ValueError, SyntaxError):
            items = [listing]
        found.setdefault(kind, []).extend(items)
    return found


def dropped_message(kind: str, item: str) -> str:
    """Why a source was dropped and how to fix it."""
    if kind == "competition sources":
        return (
            f"competition '{item}' was not attached: its rules are not accepted (or it does not "
            f"exist). Fix: accept its rules at https://www.kaggle.com/competitions/{item}/rules "
            f"(signed in as this account), then push again."
        )
    if kind == "dataset sources":
        return (
            f"dataset '{item}' was not attached: Kaggle knows no such dataset visible to you. "
            f"Fix: check the name; if it is yours, push it first (python build_kernels.py push "
            f"<dataset>) and wait until it is ready."
        )
    if kind == "kernel sources":
        return (
            f"notebook '{item}' was not attached: no such notebook visible to you. Fix: run it "
            f"on Kaggle first (python build_kernels.py push train), or build without --resume."
        )
    return f"tags {item} were not added (harmless)"


def check_push(text: str) -> Pushed:
    """The pushed version and its URL; KaggleError for any error the CLI printed and exited 0."""
    errors = [m.group(1).strip() for m in re.finditer(r"Kernel push error: (.*)", text)]
    if errors:
        raise KaggleError(
            "kernel push refused by Kaggle: " + "; ".join(errors) + "\nFix: correct what the "
            "message names (kernel-metadata.json comes from build_kernels.py's options and "
            "tables), rebuild, and push again."
        )
    problems = [
        dropped_message(kind, item)
        for kind, items in dropped_sources(text).items()
        if kind != "tags"
        for item in items
    ]
    pushed = PUSHED_RE.search(text)
    if problems:
        saved = f" Kaggle saved version {pushed.group(1)} without them" if pushed else ""
        raise KaggleError(
            f"kernel push incomplete:{saved}; that version would fail on Kaggle.\n  - "
            + "\n  - ".join(problems)
        )
    if not pushed:
        raise KaggleError(f"kernel push: no version reported. kaggle said:\n{text.strip()}")
    return Pushed(int(pushed.group(1)), pushed.group(2))


def check_dataset_upload(text: str) -> str:
    """The dataset's URL; KaggleError for a creation/version error or a skipped sub-folder."""
    errors = re.findall(r"Dataset (?:version )?creation error: (.*)", text)
    skipped = re.findall(r"Skipping folder: ([^;\n]+)", text)
    if errors:
        raise KaggleError(
            "dataset upload refused by Kaggle: "
            + "; ".join(e.strip() for e in errors)
            + "\nFix: correct what the message names in dataset-metadata.json (written by "
            "build_kernels.py) or the folder, then push again."
        )
    if skipped:
        raise KaggleError(
            f"dataset upload left out the sub-folder(s) {', '.join(skipped)} (kaggle uploads "
            "only top-level files). Fix: keep the dataset folder flat, then push again."
        )
    url = re.search(r"(?:being created|is being created)\. Please check progress at (\S+)", text)
    if not url:
        raise KaggleError(f"dataset upload: no confirmation. kaggle said:\n{text.strip()}")
    return url.group(1)


def parse_kernel_state(text: str) -> KernelState:
    match = KERNEL_STATUS_RE.search(text)
    if not match:
        raise KaggleError(f"kernels status: unreadable answer:\n{text.strip()}")
    failed = FAILURE_RE.search(text)
    return KernelState(match.group(1).upper(), failed.group(1) if failed else None)


def parse_submission(text: str) -> SubmissionState:
    """`kaggle competitions submission REF`'s block of `Label: value` lines."""
    fields = {}
    for line in text.splitlines():
        match = FIELD_RE.match(line.strip())
        if match:
            fields[match.group(1).strip()] = match.group(2).strip() or None
    if "Status" not in fields or "Submission Ref" not in fields:
        raise KaggleError(f"competitions submission: unreadable answer:\n{text.strip()}")
    return SubmissionState(
        int(fields["Submission Ref"]),
        (fields["Status"] or "").upper(),
        fields.get("Public Score"),
        fields.get("Error"),
    )


def log_tail(log: str, lines: int = 30) -> str:
    """The last `lines` lines of a kernel's log (Kaggle stores it as JSON events)."""
    try:
        events = json.loads(log)
        text = "".join(str(e.get("data", "")) for e in events if isinstance(e, dict))
    except (ValueError, AttributeError, TypeError):
        text = log
    return "\n".join(text.rstrip().splitlines()[-lines:])


class KaggleCli:
    """The pinned CLI: `python -m kaggle` of this interpreter, with the environment given.

    Every call raises KaggleError (or a subclass) on a failure, printed or exited.
    """

    def __init__(self, environ=None, home: Path | None = None, python: str = sys.executable):
        env = dict(os.environ if environ is None else environ)
        for noisy in ("VERBOSE", "VERBOSE_OUTPUT"):  # verbose mode prints request headers
            env.pop(noisy, None)
        self.env = env
        self.python = python
        self.secrets = secrets_of(env, Path(env.get("HOME") or home or Path.home()))
        self._version_checked = False

    def _exec(self, argv: list[str], timeout: float = QUESTION_TIMEOUT_S) -> CliResult:
        """Run `argv`; a call that hangs past `timeout` seconds is an error, not a wait."""
        try:
            done = subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired as err:
            raise KaggleError(
                f"`{' '.join(argv[2:])}` gave no answer in {timeout:.0f} s. Fix: check the "
                "network (and https://www.kaggle.com), then run the command again."
            ) from err
        return CliResult(
            tuple(argv), done.returncode, redact(done.stdout, self.secrets),
            redact(done.stderr, self.secrets),
        )  # fmt: skip

    def check_version(self) -> None:
        """Refuse a kaggle other than the one this module reads (its messages differ)."""
        if self._version_checked:
            return
        if self.python == sys.executable:  # this interpreter's package: no subprocess needed
            try:
                installed = importlib.metadata.version("kaggle")
            except importlib.metadata.PackageNotFoundError:
                installed = None
            self._check_found(installed, "not installed")
            return
        result = self._exec([self.python, "-m", "kaggle", "--version"])
        found = re.search(r"Kaggle CLI (\S+)", result.stdout)
        self._check_found(found.group(1) if result.code == 0 and found else None, _message(result))

    def _check_found(self, installed: str | None, said: str) -> None:
        if installed is None:
            raise KaggleError(
                f"the kaggle CLI does not run in {self.python} ({said}).\nFix: "
                "`.venv/bin/pip install -r requirements.txt` and run build_kernels.py with the "
                "venv's python (.venv/bin/python build_kernels.py ...)."
            )
        if installed != KAGGLE_CLI_VERSION:
            raise KaggleError(
                f"kaggle {installed} is installed in {self.python}; the round trip reads kaggle "
                f"{KAGGLE_CLI_VERSION}'s messages.\nFix: `.venv/bin/pip install -r "
                "requirements.txt`."
            )
        self._version_checked = True

    def run(self, *args: str, what: str, timeout: float = QUESTION_TIMEOUT_S) -> CliResult:
        """`kaggle ARGS`; raises the classified error when it exits non-zero."""
        self.check_version()
        result = self._exec([self.python, "-m", "kaggle", *args], timeout)
        if result.code != 0:
            raise failure(what, result, have_credentials=bool(self.secrets))
        return result

    # -- the calls the round trip makes --------------------------------------------------------
    def whoami(self) -> str | None:
        """The user name the CLI authenticated as (for a token: Kaggle's answer)."""
        result = self.run("config", "view", what="who am I (kaggle config view)")
        match = re.search(r"^- username: (.+)$", result.stdout, re.M)
        name = match.group(1).strip() if match else None
        return None if name in (None, "None") else name

    def dataset_status(self, ref: str) -> str | None:
        """`ready`, a processing state, `failed`; None when Kaggle has no such dataset."""
        try:
            result = self.run("datasets", "status", ref, what=f"dataset status {ref}")
        except KaggleNotFound:
            return None
        return result.stdout.strip().splitlines()[-1].strip().lower()

    def dataset_create(self, folder: Path, public: bool = False) -> str:
        args = ["datasets", "create", "-p", str(folder), *(["--public"] if public else [])]
        result = self.run(*args, what=f"dataset create {folder}", timeout=TRANSFER_TIMEOUT_S)
        return check_dataset_upload(result.text)

    def dataset_version(self, folder: Path, message: str) -> str:
        args = ["datasets", "version", "-p", str(folder), "-m", message]
        result = self.run(*args, what=f"dataset version {folder}", timeout=TRANSFER_TIMEOUT_S)
        return check_dataset_upload(result.text)

    def kernel_push(self, folder: Path) -> Pushed:
        return check_push(self.run("kernels", "push", "-p", str(folder), what="kernel push").text)

    def kernel_status(self, ref: str, version: int | None = None) -> KernelState:
        target = f"{ref}/{version}" if version else ref
        result = self.run("kernels", "status", target, what=f"kernel status {target}")
        return parse_kernel_state(result.stdout)

    def kernel_log(self, ref: str, version: int | None = None) -> str:
        target = f"{ref}/{version}" if version else ref
        return self.run("kernels", "logs", target, what=f"kernel log {target}").stdout

    def kernel_output(self, ref: str, dest: Path, pattern: str | None = None) -> None:
        args = ["kernels", "output", ref, "-p", str(dest), "--force", "--quiet"]
        args += ["--file-pattern", pattern] if pattern else []
        self.run(*args, what=f"output of {ref}", timeout=TRANSFER_TIMEOUT_S)

    def probe(self, **asked) -> Probe:
        """Many questions in one process (workbench/kaggle_probe.py): datasets=[ref],
        competitions=[slug], kernels=[ref], versions=[ref]; see Probe."""
        self.check_version()
        result = self._exec([self.python, "-P", str(PROBE), json.dumps(asked)])
        if result.code != 0:
            what = "asking Kaggle about " + ", ".join(map(str, asked.values()))
            raise failure(what, result, have_credentials=bool(self.secrets))
        try:
            return Probe(**json.loads(result.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError, TypeError) as err:
            raise KaggleError(f"unreadable answer from {PROBE.name}: {_message(result)}") from err

    def submit(self, competition: str, ref: str, version: int, file: str, message: str) -> int:
        result = self.run(
            "competitions", "submit", competition, "-k", ref, "-v", str(version), "-f", file,
            "-m", message, what=f"submit {ref} version {version} to {competition}",
        )  # fmt: skip
        found = SUBMISSION_REF_RE.search(result.stdout)
        if not found:
            raise KaggleError(f"submit: Kaggle returned no submission. kaggle said:\n{result.text}")
        return int(found.group(1))

    def submission(self, ref: int) -> SubmissionState:
        result = self.run("competitions", "submission", str(ref), what=f"submission {ref}")
        return parse_submission(result.stdout)
