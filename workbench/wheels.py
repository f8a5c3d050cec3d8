"""onnxruntime wheels for Kaggle's image, fetched once into a cache and copied into the wheels
dataset: the offline inference notebook installs them without internet. One wheel per Python
Kaggle's image may run (cp311 to cp314: the image moves from 3.12 to 3.13), so the notebook
finds the one for its interpreter (lib.onnxruntime_setup.install_onnxruntime).

The version is `lib.onnxruntime_setup.ONNXRUNTIME_VERSION`, the one the notebooks were tested
with (requirements.txt pins the same; tests/test_workbench_wheels.py checks).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lib.onnxruntime_setup import ONNXRUNTIME_VERSION, WHEEL_PYTHONS
from workbench.errors import BuildError

KAGGLE_PYTHON = "3.12"  # Kaggle's image today (build_kernels.py's help); all are shipped:
KAGGLE_PYTHONS = WHEEL_PYTHONS  # every Python Kaggle's image may run (3.13 next)
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def default_wheel_cache(environ) -> Path:
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "birdclef-kit" / "wheels"


def abi_tag(python: str) -> str:
    """ "3.13" -> "cp313"."""
    return "cp" + python.replace(".", "")


def onnxruntime_wheel(cache: Path, python: str, version: str = ONNXRUNTIME_VERSION) -> Path | None:
    """The cached onnxruntime==version wheel for `python`, or None."""
    tag = abi_tag(python)
    found = sorted(cache.glob(f"onnxruntime-{version}-{tag}-{tag}-*.whl"))
    return found[-1] if found else None


def missing_pythons(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[str]:
    """The Pythons of KAGGLE_PYTHONS with no cached onnxruntime wheel."""
    return [py for py in KAGGLE_PYTHONS if onnxruntime_wheel(cache, py, version) is None]


def cached_wheels(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[Path]:
    """The cached onnxruntime==version wheel of every Python in KAGGLE_PYTHONS, then
    flatbuffers; [] unless all are there (a cache with only some ABIs is not used as is:
    fetch_wheels completes it)."""
    ort = [onnxruntime_wheel(cache, py, version) for py in KAGGLE_PYTHONS]
    flat = sorted(cache.glob("flatbuffers-*.whl"))[-1:]
    return [*ort, *flat] if all(ort) and flat else []


def describe_wheels(wheels: list[Path], version: str = ONNXRUNTIME_VERSION) -> str:
    """One line for the build: `onnxruntime 1.32.0 for cp311, cp312, cp313, cp314 +
    flatbuffers`."""
    tags = sorted(
        {w.name.split("-")[2] for w in wheels if w.name.startswith("onnxruntime-")},
        key=lambda tag: int(tag[2:]) if tag[2:].isdigit() else 0,
    )
    flat = " + flatbuffers" if any(w.name.startswith("flatbuffers-") for w in wheels) else ""
    return f"onnxruntime {version} for {', '.join(tags) or 'no Python'}{flat}"


def pip_download_command(
    cache: Path, python: str = KAGGLE_PYTHON, version: str = ONNXRUNTIME_VERSION
) -> list[str]:
    """pip download of onnxruntime==version for `python` (manylinux x86_64) and flatbuffers."""
    platforms = [arg for plat in WHEEL_PLATFORMS for arg in ("--platform", plat)]
    return [
        sys.executable, "-m", "pip", "download", "--only-binary=:all:",
        "--python-version", python, "--implementation", "cp", *platforms,
        "--no-deps", "--dest", str(cache), f"onnxruntime=={version}", "flatbuffers",
    ]  # fmt: skip


def fetch_wheels(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[Path]:
    """Download into `cache` the wheels of every Python whose wheel is not there yet (network
    needed only once per Python); the whole set, or BuildError naming what is missing."""
    missing = missing_pythons(cache, version)
    if not missing and cached_wheels(cache, version):
        return cached_wheels(cache, version)
    cache.mkdir(parents=True, exist_ok=True)
    failed = []
    for python in missing or [KAGGLE_PYTHON]:  # none missing: only flatbuffers is
        command = pip_download_command(cache, python, version)
        print("fetching wheels:", " ".join(command))
        result = subprocess.run(command, check=False)
        if result.returncode != 0 or onnxruntime_wheel(cache, python, version) is None:
            failed.append(f"cp{python.replace('.', '')} (exit {result.returncode})")
    wheels = cached_wheels(cache, version)
    if failed or not wheels:
        raise BuildError(
            f"pip download of onnxruntime=={version} failed for {', '.join(failed) or 'some'}; "
            f"still missing: {', '.join(map(abi_tag, missing_pythons(cache, version))) or '-'}. "
            f"Fix: check the network, or put the wheels in {cache}."
        )
    return wheels


def copy_wheels(wheels: list[Path], dest: Path) -> None:
    """Replace the wheels in `dest` by `wheels`."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)
