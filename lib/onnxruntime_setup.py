"""Install onnxruntime in a notebook where Kaggle's image lacks it (both notebooks import this).

`ONNXRUNTIME_VERSION` is the one place the version lives: requirements.txt pins the same (a test
checks) and the builder fetches the wheels of this version, for every Python in
`WHEEL_PYTHONS`, into the wheels dataset for the offline inference notebook.

The inference notebook calls `install_onnxruntime`, which never raises: it installs the wheel
whose tag matches the running interpreter (cp3XY) and says why when nothing usable is there, so
the notebook can predict with PyTorch instead (lib.infer_torch). The training notebook calls
`ensure_onnxruntime(None, allow_download=True)`, which raises: its export needs onnxruntime.

Only the standard library is imported: the probe of tests/test_kaggle_python.py runs this file
alone in a bare venv, as the notebook's inlined cell runs it.
"""

from __future__ import annotations

import importlib
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The version tested here (requirements.txt pins the same).
ONNXRUNTIME_VERSION = "1.32.0"
# The Pythons Kaggle's image may run (3.12 today, 3.13 next): onnxruntime 1.32.0 publishes
# manylinux x86_64 wheels for each, and the wheels dataset carries all of them.
WHEEL_PYTHONS = ("3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class OnnxruntimeSetup:
    """What the install cell found: usable when `version` is set, else `reason` says why."""

    python: str  # the running interpreter, e.g. "3.13.0"
    abi: str  # the wheel tag it needs, e.g. "cp313"
    wheel: str | None  # the wheel file installed; None when none was (already there, or failed)
    version: str | None  # the importable onnxruntime's version; None when unusable
    reason: str = ""  # why onnxruntime is unusable; "" when usable

    @property
    def usable(self) -> bool:
        return self.version is not None


def python_abi(version_info=None) -> str:
    """The CPython wheel tag of an interpreter: (3, 13) -> "cp313"."""
    major, minor = tuple(version_info or sys.version_info)[:2]
    return f"cp{major}{minor}"


def wheel_abis(name: str) -> set[str]:
    """The Python tags of a wheel file name (`onnxruntime-1.32.0-cp313-cp313-manylinux...whl`
    -> {"cp313"}; compressed tags such as `cp312.cp313` give both)."""
    parts = name.removesuffix(".whl").split("-")
    return set(parts[-3].split(".")) if len(parts) >= 5 else set()


def select_wheel(folder: Path, abi: str) -> tuple[Path | None, str]:
    """(the onnxruntime wheel in `folder` for `abi`, "") or (None, why there is none)."""
    if not folder.is_dir():
        return None, f"wheels folder {folder} does not exist"
    wheels = sorted(folder.glob("onnxruntime-*.whl"))
    matching = [w for w in wheels if abi in wheel_abis(w.name)]
    if matching:
        return matching[-1], ""
    if not wheels:
        return None, f"{folder} holds no onnxruntime wheel"
    found = sorted({tag for w in wheels for tag in wheel_abis(w.name)})
    return None, f"wrong ABI: found {', '.join(found) or '?'}, need {abi} (in {folder})"


def _import_version() -> tuple[str | None, str]:
    """(onnxruntime.__version__, "") or (None, the import error)."""
    try:
        return importlib.import_module("onnxruntime").__version__, ""
    except Exception as err:  # ImportError, or a native library that fails to load
        return None, f"{type(err).__name__}: {err}"


def _pip_install(args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
    return subprocess.run([*command, *args], capture_output=True, text=True)


def _refresh_imports() -> None:
    """Make a fresh install importable in this process."""
    user_site = site.getusersitepackages()  # a read-only site-packages makes pip install there
    if Path(user_site).is_dir() and user_site not in sys.path:
        site.addsitedir(user_site)
    importlib.invalidate_caches()


def install_onnxruntime(wheels_dir: str | Path | None) -> OnnxruntimeSetup:
    """Import onnxruntime, first installing the wheel of `wheels_dir` that matches this Python
    (offline: --no-index --find-links, --no-deps keeps the image's numpy). Never raises: an
    unusable result carries the reason (no wheel, wrong ABI, pip failed, import failed)."""
    python, abi = sys.version.split()[0], python_abi()
    done = OnnxruntimeSetup(python, abi, None, None)
    version, _ = _import_version()
    if version is not None:
        return OnnxruntimeSetup(python, abi, None, version)
    if wheels_dir is None:
        return _unusable(done, "onnxruntime is not installed and no wheels dataset is attached")
    folder = Path(wheels_dir)
    wheel, why = select_wheel(folder, abi)
    if wheel is None:
        return _unusable(done, why)
    print(f"python {python} ({abi}): installing {wheel.name}")
    extra = ["flatbuffers"] if any(folder.glob("flatbuffers-*.whl")) else []
    pip = _pip_install(["--no-index", "--find-links", str(folder), str(wheel), *extra])
    if pip.returncode != 0:
        tail = pip.stderr.strip()[-600:]
        return _unusable(done, f"pip install {wheel.name} failed (exit {pip.returncode}): {tail}")
    _refresh_imports()
    version, error = _import_version()
    if version is None:
        return _unusable(done, f"import onnxruntime failed after installing {wheel.name}: {error}")
    return OnnxruntimeSetup(python, abi, wheel.name, version)


def _unusable(setup: OnnxruntimeSetup, reason: str) -> OnnxruntimeSetup:
    return OnnxruntimeSetup(setup.python, setup.abi, setup.wheel, None, reason)


def ensure_onnxruntime(wheels_dir: str | Path | None, allow_download: bool = False) -> str:
    """Import onnxruntime, installing it first if missing; its version. Raises RuntimeError
    saying why and how to fix it (the training notebook's export cannot go on without it).

    `allow_download` (the training notebook, internet on) installs from PyPI when no wheels
    folder is given."""
    if wheels_dir is None and allow_download:
        version, _ = _import_version()
        if version is not None:
            return version
        pip = _pip_install([f"onnxruntime=={ONNXRUNTIME_VERSION}", "flatbuffers"])
        if pip.returncode != 0:
            raise RuntimeError(f"pip install onnxruntime failed:\n{pip.stderr[-2000:]}")
        _refresh_imports()
        return importlib.import_module("onnxruntime").__version__
    setup = install_onnxruntime(wheels_dir)
    if not setup.usable:
        raise RuntimeError(
            f"onnxruntime is unusable on Python {setup.python}: {setup.reason}. Fix: attach "
            "the onnxruntime wheels dataset (build_kernels.py --wheels builds it for "
            f"{', '.join(WHEEL_PYTHONS)}), or pip install onnxruntime where internet is on."
        )
    return setup.version
