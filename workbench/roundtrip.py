"""The Kaggle round trip from the command line: push a built folder, wait for a notebook, fetch
the training output into the models dataset, submit the inference notebook.

    push NAME    a dataset folder (wheels, models): `datasets create`, or `datasets version` when
                 it exists. A notebook folder (train, infer): wait until the user's own datasets
                 it reads are ready, check once that the others' datasets, the competitions
                 (rules accepted) and the notebooks it reads exist, then `kernels push`.
    status NAME  poll the notebook until it completes, fails (the log's tail is shown) or the
                 timeout passes.
    fetch        download the training notebook's output and make the models dataset from it.
    submit       submit the inference notebook's latest complete version (or --version N).

Every step goes through `KaggleCli`, which turns each failure the CLI only prints into an
error. Owner: a build made without credentials holds a placeholder owner; pushing writes the
owner resolved now (`--owner`, $KAGGLE_USERNAME, kaggle.json, or Kaggle's answer for an access
token) into the folder's metadata first.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lib.models_dataset import CLASSES_FILE, CONFIG_FILE, fold_file
from lib.paths import COMPETITION_SLUG
from workbench.build import build_competition
from workbench.errors import BuildError
from workbench.kaggle_cli import (
    AUTH_FIX,
    KaggleAuthError,
    KaggleCli,
    KaggleError,
    KaggleNotFound,
    SubmissionState,
    dropped_message,
    log_tail,
    redact,
)
from workbench.metadata import copy_models, export_folder
from workbench.owner import OWNER_PLACEHOLDER, resolve_owner, token_source

KERNEL_METADATA = "kernel-metadata.json"
DATASET_METADATA = "dataset-metadata.json"
SUBMISSION_FILE = "submission.csv"  # what the inference notebook writes (Kaggle scores it)
# What `fetch` downloads of the training output: the export (any depth), not the checkpoints.
OUTPUT_PATTERN = r"(?:^|/)(?:[^/]+\.onnx|fold\d+\.pt|[^/]+\.json|classes[^/]*\.(?:txt|csv))$"
RUNNING = ("QUEUED", "RUNNING", "NEW_SCRIPT")
LOOKBACK = 10  # versions searched for the latest complete one


class TimedOut(KaggleError):
    """Still waiting when the timeout passed: nothing failed yet (exit code 2)."""


class KernelFailed(KaggleError):
    """The notebook's run ended in error or was cancelled."""


@dataclass(frozen=True)
class Waits:
    """How long and how often to poll (seconds). The defaults are what Kaggle takes."""

    poll: float = 30.0
    datasets: float = 30 * 60  # a dataset version is usually ready within minutes
    kernel: float = 12.5 * 3600  # a GPU session runs at most 12 h, plus the queue
    submission: float = 3 * 3600  # the scoring run: at most 2 h on CPU, plus the queue


@dataclass
class Roundtrip:
    """The round trip for the build in `out`, as Kaggle user `owner`."""

    cli: KaggleCli
    out: Path
    owner: str
    waits: Waits = field(default_factory=Waits)
    competition: str = COMPETITION_SLUG
    say: Callable[[str], None] = lambda line: print(line, flush=True)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    # -- the build's folders -----------------------------------------------------------------
    def folder(self, name: str) -> tuple[str, Path, dict]:
        """("kernel" or "dataset", folder, metadata with the owner set) of build/<name>."""
        folder = Path(self.out) / name
        for kind, file in (("kernel", KERNEL_METADATA), ("dataset", DATASET_METADATA)):
            path = folder / file
            if path.is_file():
                return kind, folder, self._owned(path, json.loads(path.read_text()))
        built = sorted(p.parent.name for p in Path(self.out).glob("*/*-metadata.json"))
        raise BuildError(
            f"{folder}: no {KERNEL_METADATA} or {DATASET_METADATA}. Built folders: "
            f"{', '.join(built) or 'none'}. Fix: run `python build_kernels.py` (--out {self.out})."
        )

    def _owned(self, path: Path, meta: dict) -> dict:
        """The metadata naming `owner`: a placeholder is replaced (and saved); others fail."""
        built = str(meta.get("id", "")).split("/")[0]
        if built == self.owner:
            return meta
        if built != OWNER_PLACEHOLDER:
            raise BuildError(
                f"{path}: built for Kaggle user '{built}', but this runs as '{self.owner}'. "
                f"Fix: rebuild with `python build_kernels.py --owner {self.owner}`, or use "
                f"{built}'s credentials (or --owner {built})."
            )

        def swap(ref: str) -> str:
            return self.owner + ref[len(built) :] if ref.startswith(built + "/") else ref

        meta = dict(meta, id=swap(meta["id"]))
        for key in ("dataset_sources", "kernel_sources"):
            if key in meta:
                meta[key] = [swap(ref) for ref in meta[key]]
        path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        self.say(f"{path}: owner set to {self.owner}")
        return meta

    def kernel_ref(self, name: str) -> str:
        kind, folder, meta = self.folder(name)
        if kind != "kernel":
            raise BuildError(f"{folder} is a dataset folder; name a notebook (train, infer)")
        return meta["id"]

    def _dataset_names(self) -> dict[str, str]:
        """{dataset ref: build folder name} for the fix in messages."""
        names = {}
        for path in Path(self.out).glob(f"*/{DATASET_METADATA}"):
            ref = json.loads(path.read_text()).get("id", "")
            names[self.owner + "/" + ref.split("/", 1)[-1]] = path.parent.name
        return names

    # -- push ------------------------------------------------------------------------------
    def push(self, name: str, message: str | None = None) -> str:
        """Push build/<name>; returns the URL Kaggle gives."""
        kind, folder, meta = self.folder(name)
        if kind == "dataset":
            return self._push_dataset(folder, meta, message)
        self._check_sources(meta)
        pushed = self.cli.kernel_push(folder)
        self.say(f"pushed {meta['id']} version {pushed.version}: {pushed.url}")
        self.say(f"next: python build_kernels.py status {name}")
        return pushed.url

    def _push_dataset(self, folder: Path, meta: dict, message: str | None) -> str:
        files = [p for p in folder.iterdir() if p.name != DATASET_METADATA]
        if any(p.is_dir() for p in files):
            subs = ", ".join(p.name for p in files if p.is_dir())
            raise BuildError(f"{folder}: sub-folders {subs} would not be uploaded; keep it flat")
        if not files:
            raise BuildError(
                f"{folder}: no files to upload. Fix: for wheels `python build_kernels.py "
                f"--wheels`; for models `python build_kernels.py fetch` after training."
            )
        if folder.name == "models":
            check_models_folder(folder)
        ref = meta["id"]
        if self.cli.dataset_status(ref) is None:
            self.say(f"creating dataset {ref} ({len(files)} files)")
            url = self.cli.dataset_create(folder)
        else:
            self.say(f"dataset {ref} exists: adding a version ({len(files)} files)")
            note = (
                message or f"birdclef-kit push {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
            )
            url = self.cli.dataset_version(folder, note)
        self.say(f"pushed {ref}: {url} (notebooks that read it wait until it is ready)")
        return url

    def _check_sources(self, meta: dict) -> None:
        """Check every input once (one probe), wait for the owner's datasets; refuse to push
        a notebook that would run without an input."""
        datasets = list(meta.get("dataset_sources", []))
        own = [ref for ref in datasets if ref.startswith(self.owner + "/")]
        asked = self.cli.probe(
            datasets=datasets,
            competitions=list(meta.get("competition_sources", [])),
            kernels=list(meta.get("kernel_sources", [])),
        )
        kinds = (("dataset sources", asked.datasets), ("competition sources", asked.competitions),
                 ("kernel sources", asked.kernels))  # fmt: skip
        problems = [
            dropped_message(kind, item) + _said(answer)
            for kind, answers in kinds
            for item, answer in answers.items()
            if "error" in answer and item not in own
        ]
        if problems:
            raise KaggleError(
                f"not pushing {meta['id']}: the notebook would run without inputs it needs.\n"
                "  - " + "\n  - ".join(problems)
            )
        if own:
            self.wait_datasets(own, first={ref: asked.datasets[ref] for ref in own})

    def wait_datasets(self, refs: list[str], first: dict | None = None) -> None:
        """Poll the datasets' status until every one of `refs` is ready."""
        start, names = self.clock(), self._dataset_names()
        while True:
            answers = first or self.cli.probe(datasets=refs).datasets
            first = None
            states = {}
            for ref in refs:
                push = f"python build_kernels.py push {names.get(ref, '<dataset>')}"
                answer = answers[ref]
                if answer.get("error") == 404:
                    raise KaggleNotFound(f"dataset {ref} is not on Kaggle. Fix: `{push}` first.")
                if "error" in answer:
                    raise KaggleError(f"dataset {ref}: {answer['message']}")
                states[ref] = answer["ok"]
                if states[ref] == "failed":
                    raise KaggleError(f"dataset {ref} failed to process on Kaggle. Fix: `{push}`.")
            waiting = {ref: state for ref, state in states.items() if state != "ready"}
            elapsed = self.clock() - start
            if not waiting:
                self.say(f"datasets ready: {', '.join(refs)}")
                return
            listing = ", ".join(f"{ref} ({state})" for ref, state in waiting.items())
            if elapsed > self.waits.datasets:
                raise TimedOut(
                    f"datasets still processing after {elapsed / 60:.1f} min: {listing}. Fix: "
                    "check them on Kaggle, then push again (or raise --timeout)."
                )
            self.say(f"[{_minutes(elapsed)}] waiting for datasets: {listing}")
            self.sleep(self.waits.poll)

    # -- status ----------------------------------------------------------------------------
    def status(self, name: str, version: int | None = None) -> str:
        """Poll until the notebook's run ends; COMPLETE returns, ERROR/cancel raise, timeout too."""
        ref = self.kernel_ref(name)
        start, last, last_said = self.clock(), None, -1e9
        while True:
            state = self.cli.kernel_status(ref, version)
            elapsed = self.clock() - start
            if state.state not in RUNNING:
                break
            if state.state != last or elapsed - last_said >= 600:
                self.say(f"[{_minutes(elapsed)}] {ref}: {state.state.lower()}")
                last, last_said = state.state, elapsed
            if elapsed > self.waits.kernel:
                raise TimedOut(
                    f"{ref} is still {state.state.lower()} after {elapsed / 60:.0f} min. Run "
                    f"`python build_kernels.py status {name}` again to keep waiting."
                )
            self.sleep(self.waits.poll)
        if state.state == "COMPLETE":
            self.say(f"{ref}: complete")
            return state.state
        tail = log_tail(self.cli.kernel_log(ref, version))
        raise KernelFailed(
            f"{ref} ended in {state.state}: {state.failure or 'no message'}\n"
            f"last lines of its log:\n{tail}\n"
            f"Fix: read the whole log (`kaggle kernels logs {ref}`) or the notebook's page, fix "
            f"the cause, rebuild and `python build_kernels.py push {name}`."
        )

    # -- fetch -----------------------------------------------------------------------------
    def fetch(self, name: str = "train", models: str = "models") -> list[Path]:
        """The training notebook's export -> build/<models>/ (checked, then copied flat)."""
        ref = self.kernel_ref(name)
        state = self.cli.kernel_status(ref)
        if state.state != "COMPLETE":
            raise KaggleError(
                f"{ref}'s latest run is {state.state.lower()}: nothing to fetch yet. Fix: "
                f"`python build_kernels.py status {name}` until it completes."
            )
        dest = Path(self.out) / models
        if not (dest / DATASET_METADATA).is_file():
            raise BuildError(f"{dest}: no {DATASET_METADATA}. Fix: run `python build_kernels.py`.")
        with tempfile.TemporaryDirectory(dir=self.out, prefix=".fetch-") as tmp:
            self.say(f"downloading the output of {ref}")
            self.cli.kernel_output(ref, Path(tmp), OUTPUT_PATTERN)
            found = Path(tmp)
            export = export_folder(found) if any(found.rglob("*.onnx")) else found
            check_models_folder(export, what=f"the output of {ref}")
            copied = copy_models(export, dest)
        self.say(f"models dataset: {len(copied)} files -> {dest}")
        self.say(f"next: python build_kernels.py push {models}")
        return copied

    # -- submit ----------------------------------------------------------------------------
    def latest_complete(self, ref: str) -> int:
        """The newest version of `ref` whose run completed (one probe)."""
        answer = self.cli.probe(versions=[ref], lookback=LOOKBACK).versions[ref]
        if "error" in answer:
            raise (KaggleNotFound if answer["error"] == 404 else KaggleError)(
                f"{ref}: {answer['message']}\nFix: `python build_kernels.py push infer` first."
            )
        current, states = answer["ok"]["current"], answer["ok"]["states"]
        for number, state in sorted(((int(n), s) for n, s in states.items()), reverse=True):
            if state == "COMPLETE":
                return number
            self.say(f"{ref} version {number} is {state.lower()}: not submitted")
        raise KaggleError(
            f"{ref}: none of versions {max(1, current - LOOKBACK + 1)}..{current} completed. Fix: "
            f"`python build_kernels.py status infer`, or pass --version N."
        )

    def submit(
        self, name: str = "infer", version: int | None = None, message: str | None = None,
        wait: bool = False,
    ) -> SubmissionState:  # fmt: skip
        ref = self.kernel_ref(name)
        if version is None:
            version = self.latest_complete(ref)
        else:
            state = self.cli.kernel_status(ref, version)
            if state.state != "COMPLETE":
                raise KaggleError(f"{ref} version {version} is {state.state.lower()}, not complete")
        note = message or f"{ref.split('/')[-1]} version {version}"
        ref_no = self.cli.submit(self.competition, ref, version, SUBMISSION_FILE, note)
        self.say(f"submitted {ref} version {version} to {self.competition}: submission {ref_no}")
        start = self.clock()
        while True:
            state = self.cli.submission(ref_no)
            elapsed = self.clock() - start
            self.say(f"[{_minutes(elapsed)}] submission {ref_no}: {state.state.lower()}")
            if state.state == "COMPLETE":
                self.say(f"public score: {state.public_score}")
                return state
            if state.state == "ERROR":
                raise KaggleError(
                    f"submission {ref_no} failed to score: {state.error or 'no message'}. Fix: "
                    "the scoring run of the notebook failed or ran out of time; see the "
                    f"submission on https://www.kaggle.com/competitions/{self.competition}/"
                    "submissions, fix, push and submit again."
                )
            if not wait:
                return state
            if elapsed > self.waits.submission:
                raise TimedOut(
                    f"submission {ref_no} still {state.state.lower()} after "
                    f"{elapsed / 60:.0f} min; `kaggle competitions submission {ref_no}` shows it."
                )
            self.sleep(self.waits.poll)


def check_models_folder(folder: Path, what: str | None = None) -> Path:
    """`folder` if it holds classes.json, config.json and every fold config.json names."""
    what = what or f"models folder {folder}"
    missing = [n for n in (CLASSES_FILE, CONFIG_FILE) if not (folder / n).is_file()]
    folds: list[int] = []
    if (folder / CONFIG_FILE).is_file():
        config = json.loads((folder / CONFIG_FILE).read_text())
        folds = list(config.get("folds") or range(int(config.get("n_folds", 0))))
    missing += [fold_file(k) for k in folds if not (folder / fold_file(k)).is_file()]
    if not folds and not list(folder.glob("fold*.onnx")):
        missing.append("fold*.onnx")
    if missing:
        raise BuildError(
            f"{what} lacks {', '.join(missing)}: not a complete models dataset. "
            "Fix: let the training notebook finish every fold and its export (rerun it with its "
            "own output attached: --resume), then fetch again."
        )
    return folder


def _said(answer: dict) -> str:
    """Kaggle's own words for a failed probe, first line only."""
    message = str(answer.get("message", "")).strip().splitlines()
    return f" (Kaggle: {message[0]})" if message else ""


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:5.1f} min"


def run_command(
    command: str,
    *,
    out: Path,
    name: str | None = None,
    owner: str | None = None,
    waits: Waits | None = None,
    version: int | None = None,
    message: str | None = None,
    wait: bool = False,
    environ=None,
    say: Callable[[str], None] | None = None,
) -> int:
    """One round-trip command (push, status, fetch, submit) as the user's Kaggle account.

    Exit code: 0 done; 1 failed (the error names the cause and the fix); 2 still waiting when
    the timeout passed.
    """
    environ = os.environ if environ is None else environ
    say = say or (lambda line: print(line, flush=True))
    home = Path(environ.get("HOME") or Path.home())
    cli = KaggleCli(environ)

    def whoami() -> str | None:
        try:
            return cli.whoami()
        except KaggleAuthError as err:
            raise KaggleAuthError(
                f"Kaggle did not accept the access token in {token_source(environ, home)} "
                f"(expired or revoked?).\nFix: {AUTH_FIX}."
            ) from err

    try:
        resolved, origin = resolve_owner(owner, environ, home, whoami=whoami)
        if not resolved:
            raise KaggleAuthError(
                f"no Kaggle user name: none of --owner, $KAGGLE_USERNAME, kaggle.json or an "
                f"access token is set.\nFix: {AUTH_FIX}."
            )
        say(f"Kaggle user: {resolved} (from {origin})")
        competition = build_competition(Path(out))  # what the build was made for
        trip = Roundtrip(cli, Path(out), resolved, waits or Waits(), competition, say=say)
        if command == "push":
            trip.push(name, message)
        elif command == "status":
            trip.status(name, version)
        elif command == "fetch":
            trip.fetch(name or "train")
        elif command == "submit":
            trip.submit(name or "infer", version, message, wait)
        else:
            raise BuildError(f"unknown command {command!r}")
    except TimedOut as err:
        print(f"still waiting: {redact(str(err), cli.secrets)}", file=sys.stderr)
        return 2
    except (KaggleError, BuildError) as err:
        print(f"error: {redact(str(err), cli.secrets)}", file=sys.stderr)
        return 1
    return 0
