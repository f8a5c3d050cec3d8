"""A local stand-in for Kaggle's API, so the round trip is tested with the real kaggle CLI.

kaggle 2.2.5 with `KAGGLE_API_ENVIRONMENT=LOCALHOST` sends every call as
`POST http://localhost/api/v1/<service>/<Method>` with a JSON body (camelCase fields, see
kagglesdk/*/types); with `HTTP_PROXY=http://127.0.0.1:<port>` requests hands those to this
server in absolute form. Uploads are `PUT` to the `createUrl` handed out by StartBlobUpload;
kernel outputs are `GET` from the urls ListKernelSessionOutput lists. An error answers with
`{"code": N, "message": ...}` and status N, which the CLI raises as an HTTPError carrying the
message.

State: datasets (versions, processing polls left), kernels (versions, each with its run's state,
log and output files), submissions. `Faults` injects what Kaggle does to a user: a push error, a
dataset-creation error, competition sources whose rules are not accepted (dropped from a push,
403 on their files), unknown sources (dropped), bad credentials (401), a kernel run that ends in
`ERROR` with a log, a dataset that stays processing for N status polls.

Only 127.0.0.1; request bodies over `MAX_BODY` are refused; `stop()` (or leaving the `with`)
shuts the server down and joins its thread.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

MAX_BODY = 64 * 1024 * 1024
API_PREFIX = "/api/v1/"
PUBLIC_DATASETS = (
    "rohanrao/xeno-canto-bird-recordings-extended-a-m",
    "rohanrao/xeno-canto-bird-recordings-extended-n-z",
)
# Every BirdCLEF year the toolkit builds for (lib.competitions.PROFILES) and the older sources.
COMPETITIONS = (
    "birdclef-2023", "birdclef-2024", "birdclef-2025", "birdclef-2026",
    "birdsong-recognition", "birdclef-2021", "birdclef-2022",
)  # fmt: skip


class ApiError(Exception):
    """An answer with HTTP status `code` and Kaggle's `{"code", "message"}` body."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Faults:
    """What goes wrong; every field's default is 'nothing'."""

    push_error: str | None = None  # SaveKernel answers {"error": ...}
    dataset_error: str | None = None  # CreateDataset / CreateDatasetVersion answer an error
    unaccepted_competitions: set[str] = field(default_factory=set)  # rules not accepted
    bad_credentials: bool = False  # every authenticated call answers 401
    kernel_errors: dict[str, str] = field(default_factory=dict)  # slug -> log of a failing run
    dataset_processing_polls: int = 0  # status polls a new dataset version stays processing
    kernel_polls: int = 1  # status polls a kernel run stays RUNNING
    submission_polls: int = 1  # polls a submission stays PENDING
    submission_error: str | None = None  # the scoring of a submission fails with this


@dataclass
class DatasetVersion:
    number: int
    files: dict[str, bytes]
    polls_left: int


@dataclass
class KernelVersion:
    number: int
    request: dict  # the SaveKernel body as sent (metadata the tests check)
    polls_left: int
    error_log: str | None
    outputs: dict[str, bytes]
    state: str = "QUEUED"


@dataclass
class Submission:
    ref: int
    competition: str
    kernel: str
    version: int
    description: str
    polls_left: int
    error: str | None
    state: str = "PENDING"


class KaggleStub:
    """The stub server and its state. `kernel_outputs[slug]` is what a complete run writes."""

    def __init__(
        self,
        *,
        username: str = "stub-user",
        key: str = "stub-key-0123456789",
        token: str = "stub-token-ABCDEFGHIJ",
        faults: Faults | None = None,
        kernel_outputs: dict[str, dict[str, bytes]] | None = None,
    ):
        self.username, self.key, self.token = username, key, token
        self.faults = faults or Faults()
        self.kernel_outputs = kernel_outputs or {}
        self.datasets: dict[str, list[DatasetVersion]] = {}
        self.kernels: dict[str, list[KernelVersion]] = {}
        self.submissions: dict[int, Submission] = {}
        self.blobs: dict[str, bytes | None] = {}  # upload token -> bytes (None: not yet PUT)
        self.blob_names: dict[str, str] = {}  # upload token -> file name
        self.calls: list[str] = []  # "Service/Method" or "PUT upload" etc., in order
        self.downloads: list[str] = []  # output file names fetched
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> KaggleStub:
        stub = self

        class Handler(_Handler):
            server_stub = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> KaggleStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def cli_env(self, home, *, credentials: str = "kaggle.json") -> dict[str, str]:
        """Environment for the real CLI talking to this stub, its config under `home`.

        `credentials`: "kaggle.json" (a fake kaggle.json in $KAGGLE_CONFIG_DIR), "env"
        (KAGGLE_USERNAME/KAGGLE_KEY), "token" (KAGGLE_API_TOKEN only), "token-file"
        (~/.kaggle/access_token only) or "none".
        """
        import os
        from pathlib import Path

        home = Path(home)
        config_dir, tmp = home / "kaggle-config", home / "tmp"
        config_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "KAGGLE_CONFIG_DIR": str(config_dir),
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "HTTP_PROXY": self.proxy,
            "http_proxy": self.proxy,
            "NO_PROXY": "",
            "no_proxy": "",
        }
        if credentials == "kaggle.json":
            path = config_dir / "kaggle.json"
            path.write_text(json.dumps({"username": self.username, "key": self.key}))
            path.chmod(0o600)
        elif credentials == "env":
            env |= {"KAGGLE_USERNAME": self.username, "KAGGLE_KEY": self.key}
        elif credentials == "token":
            env["KAGGLE_API_TOKEN"] = self.token
        elif credentials == "token-file":
            (home / ".kaggle").mkdir(exist_ok=True)
            (home / ".kaggle" / "access_token").write_text(self.token + "\n")
        elif credentials != "none":
            raise ValueError(f"unknown credentials kind {credentials!r}")
        return env

    # -- helpers for tests -----------------------------------------------------------------
    def add_dataset(self, ref: str, files: dict[str, bytes] | None = None, polls: int = 0) -> None:
        """A dataset as if pushed earlier, still processing for `polls` status polls."""
        self.datasets[ref] = [DatasetVersion(1, dict(files or {}), polls)]

    def add_kernel_version(
        self, ref: str, state: str = "COMPLETE", outputs: dict[str, bytes] | None = None,
        error_log: str | None = None, polls: int = 0,
    ) -> KernelVersion:  # fmt: skip
        """A version of notebook `ref` as if pushed (and run to `state`) earlier."""
        versions = self.kernels.setdefault(ref, [])
        slug = ref.split("/", 1)[1]
        outputs = self.kernel_outputs.get(slug, {}) if outputs is None else outputs
        version = KernelVersion(len(versions) + 1, {"slug": ref}, polls, error_log, dict(outputs))
        version.state = state
        versions.append(version)
        return version

    def kernel_request(self, ref: str, version: int = -1) -> dict:
        """The SaveKernel body of a pushed version (default the latest)."""
        return (
            self.kernels[ref][version].request
            if version < 0
            else self._kernel_version(ref, version).request
        )

    def _kernel_version(self, ref: str, number: int) -> KernelVersion:
        for version in self.kernels.get(ref, []):
            if version.number == number:
                return version
        raise ApiError(404, f"Kernel {ref} version {number} not found")

    # -- authentication --------------------------------------------------------------------
    def check_auth(self, header: str | None) -> str:
        """The user a request is from; 401 for missing or wrong credentials."""
        if self.faults.bad_credentials:
            raise ApiError(401, "Unauthenticated: the credentials were rejected")
        if header and header.startswith("Basic "):
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
            if user == self.username and key == self.key:
                return user
        if header and header == f"Bearer {self.token}":
            return self.username
        raise ApiError(401, "Unauthenticated")

    # -- API methods: name -> handler(user, body) -----------------------------------------------
    def dispatch(self, method: str, body: dict, auth: str | None) -> dict:
        if method == "security.OAuthService/IntrospectToken":
            good = not self.faults.bad_credentials and body.get("token") == self.token
            return {"active": True, "username": self.username} if good else {"active": False}
        user = self.check_auth(auth)
        handler = getattr(self, "api_" + method.split("/")[-1], None)
        if handler is None:
            raise ApiError(404, f"stub: no handler for {method}")
        return handler(user, body)

    def api_GetDatasetStatus(self, user, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref in PUBLIC_DATASETS:
            return {"status": "READY"}
        versions = self.datasets.get(ref)
        if not versions:
            raise ApiError(404, f"Dataset {ref} not found")
        latest = versions[-1]
        if latest.polls_left > 0:
            latest.polls_left -= 1
            return {"status": "BLOBS_RECEIVED"}
        return {"status": "READY"}

    def _take_files(self, files: list[dict]) -> dict[str, bytes]:
        taken = {}
        for item in files:
            token = item.get("token")
            if self.blobs.get(token) is None:
                raise ApiError(400, f"upload token {token!r} unknown or never uploaded")
            taken[self.blob_names[token]] = self.blobs.pop(token)
        return taken

    def api_CreateDataset(self, user, body):
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        if self.faults.dataset_error:
            return {"status": "error", "error": self.faults.dataset_error}
        if body.get("ownerSlug") != user:
            return {"status": "error", "error": f"You cannot create datasets for {ref}"}
        if ref in self.datasets:
            return {"status": "error", "error": f"Dataset {ref} already exists"}
        files = self._take_files(body.get("files", []))
        polls = self.faults.dataset_processing_polls
        self.datasets[ref] = [DatasetVersion(1, files, polls)]
        return {"status": "ok", "ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}"}

    def api_CreateDatasetVersion(self, user, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            raise ApiError(404, f"Dataset {ref} not found")
        if self.faults.dataset_error:
            return {"status": "error", "error": self.faults.dataset_error}
        files = self._take_files(body.get("body", {}).get("files", []))
        versions = self.datasets[ref]
        polls = self.faults.dataset_processing_polls
        versions.append(DatasetVersion(len(versions) + 1, files, polls))
        return {"status": "ok", "ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}"}

    def api_StartBlobUpload(self, user, body):
        token = f"blob{len(self.blob_names) + 1}"
        self.blob_names[token] = body.get("name", "file")
        self.blobs[token] = None
        return {"token": token, "createUrl": f"http://localhost/upload/{token}"}

    def api_SaveKernel(self, user, body):
        ref = body.get("slug") or ""
        if self.faults.push_error:
            return {"error": self.faults.push_error}
        if not ref.startswith(user + "/"):
            return {"error": f"You do not have permission to save kernel {ref}"}
        known = set(self.datasets) | set(PUBLIC_DATASETS)
        invalid_datasets = [d for d in body.get("datasetDataSources", []) if d not in known]
        invalid_competitions = [
            c
            for c in body.get("competitionDataSources", [])
            if c not in COMPETITIONS or c in self.faults.unaccepted_competitions
        ]
        invalid_kernels = [k for k in body.get("kernelDataSources", []) if k not in self.kernels]
        slug = ref.split("/", 1)[1]
        versions = self.kernels.setdefault(ref, [])
        versions.append(
            KernelVersion(
                number=len(versions) + 1,
                request=body,
                polls_left=self.faults.kernel_polls,
                error_log=self.faults.kernel_errors.get(slug),
                outputs=dict(self.kernel_outputs.get(slug, {})),
            )
        )
        return {
            "ref": f"/code/{ref}",
            "url": f"https://www.kaggle.com/code/{ref}",
            "versionNumber": len(versions),
            "invalidDatasetSources": invalid_datasets,
            "invalidCompetitionSources": invalid_competitions,
            "invalidKernelSources": invalid_kernels,
        }

    def _version_for(self, body) -> KernelVersion:
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        if not self.kernels.get(ref):
            raise ApiError(404, f"Kernel {ref} not found")
        label = body.get("versionLabel")
        if label:
            return self._kernel_version(ref, int(label.lstrip("v")))
        return self.kernels[ref][-1]

    def api_GetKernelSessionStatus(self, user, body):
        version = self._version_for(body)
        if version.state in ("QUEUED", "RUNNING"):
            if version.polls_left > 0:
                version.polls_left -= 1
                version.state = "RUNNING"
            else:
                version.state = "ERROR" if version.error_log is not None else "COMPLETE"
        answer = {"status": version.state}
        if version.state == "ERROR":
            answer["failureMessage"] = "Your notebook hit an unhandled error while executing"
        return answer

    def api_ListKernelSessionOutput(self, user, body):
        version = self._version_for(body)
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        files = []
        if version.state == "COMPLETE":
            files = [
                {"fileName": name, "url": f"http://localhost/output/{ref}/{version.number}/{name}"}
                for name in sorted(version.outputs)
            ]
        text = version.error_log if version.state == "ERROR" else "ran to the end\n"
        log = [
            {"stream_name": "stdout", "time": 1.0, "data": line + "\n"} for line in text.split("\n")
        ]
        return {"files": files, "log": json.dumps(log)}

    def api_GetKernel(self, user, body):
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        if not self.kernels.get(ref):
            raise ApiError(404, f"Kernel {ref} not found")
        latest = self.kernels[ref][-1]
        return {
            "metadata": {
                "ref": ref,
                "slug": body.get("kernelSlug"),
                "currentVersionNumber": latest.number,
            },
            "blob": {
                "source": latest.request.get("text", ""),
                "language": "python",
                "kernelType": "notebook",
            },
        }

    def _competition(self, name: str) -> None:
        if name not in COMPETITIONS:
            raise ApiError(404, f"Competition {name} not found")
        if name in self.faults.unaccepted_competitions:
            raise ApiError(403, "You must accept this competition's rules before you can use it")

    def api_ListDataFiles(self, user, body):
        self._competition(body.get("competitionName"))
        return {"files": [{"name": "train_metadata.csv", "totalBytes": 1}]}

    def api_CreateCodeSubmission(self, user, body):
        competition = body.get("competitionName")
        self._competition(competition)
        ref = f"{body.get('kernelOwner')}/{body.get('kernelSlug')}"
        version = self._kernel_version(ref, int(body.get("kernelVersion") or 0))
        if version.state != "COMPLETE":
            raise ApiError(400, f"Kernel {ref} version {version.number} has not completed")
        if body.get("fileName") not in version.outputs:
            raise ApiError(
                400, f"{body.get('fileName')} is not an output of {ref} v{version.number}"
            )
        number = 1000 + len(self.submissions)
        self.submissions[number] = Submission(
            number, competition, ref, version.number, body.get("submissionDescription", ""),
            self.faults.submission_polls, self.faults.submission_error,
        )  # fmt: skip
        return {"message": "Your submission was successfully saved", "ref": number}

    def api_GetSubmission(self, user, body):
        submission = self.submissions.get(int(body.get("ref", 0)))
        if submission is None:
            raise ApiError(404, "Submission not found")
        if submission.state == "PENDING":
            if submission.polls_left > 0:
                submission.polls_left -= 1
            else:
                submission.state = "ERROR" if submission.error else "COMPLETE"
        answer = {"ref": submission.ref, "status": submission.state}
        answer["description"] = submission.description
        if submission.state == "COMPLETE":
            answer["publicScore"] = "0.81234"
        if submission.state == "ERROR":
            answer["errorDescription"] = submission.error
        return answer

    def api_GetSubmissionLimits(self, user, body):
        return {"numAllowedNow": 4, "numToday": 1}

    # -- raw uploads and downloads ---------------------------------------------------------
    def put_upload(self, token: str, data: bytes) -> int:
        if token not in self.blobs:
            return 404
        self.blobs[token] = data
        return 200

    def get_output(self, path: str) -> bytes | None:
        owner, slug, number, name = path.split("/", 3)
        self.downloads.append(name)
        try:
            return self._kernel_version(f"{owner}/{slug}", int(number)).outputs.get(name)
        except (ApiError, ValueError):
            return None


class _Handler(BaseHTTPRequestHandler):
    server_stub: KaggleStub
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle connection is closed after this

    def log_message(self, format, *args):  # quiet: pytest shows failures, not traffic
        pass

    def _path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, f"stub: body over {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        stub, path = self.server_stub, self._path()
        try:
            if not path.startswith(API_PREFIX):
                raise ApiError(404, f"stub: unknown path {path}")
            method = path[len(API_PREFIX) :]
            body = json.loads(self._body() or b"{}")
            with stub.lock:
                stub.calls.append(method)
                answer = stub.dispatch(method, body, self.headers.get("Authorization"))
            self._send(200, json.dumps(answer).encode())
        except ApiError as err:
            self._send(err.code, json.dumps({"code": err.code, "message": err.message}).encode())

    def do_PUT(self):
        stub, path = self.server_stub, self._path()
        try:
            data = self._body()
        except ApiError as err:
            self._send(err.code, err.message.encode(), "text/plain")
            return
        with stub.lock:
            stub.calls.append("PUT upload")
            code = stub.put_upload(path.rsplit("/", 1)[-1], data) if "/upload/" in path else 404
        self._send(code, b"")

    def do_GET(self):
        stub, path = self.server_stub, self._path()
        with stub.lock:
            stub.calls.append("GET output")
            data = stub.get_output(path[len("/output/") :]) if path.startswith("/output/") else None
        if data is None:
            self._send(404, b"not found", "text/plain")
        else:
            self._send(200, data, "application/octet-stream")
