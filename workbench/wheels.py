"""onnxruntime wheels for Kaggle's image, fetched once into a cache and copied into the wheels
dataset: the offline inference notebook installs them without internet.

The version is `lib.onnxruntime_setup.ONNXRUNTIME_VERSION`, the one the notebooks were tested
with (requirements.txt pins the same; tests/test_workbench_wheels.py checks).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lib.onnxruntime_setup import ONNXRUNTIME_VERSION
from workbench.errors import BuildError

KAGGLE_PYTHON = "3.12"
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def default_wheel_cache(environ) -> Path:
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "birdclef-kit" / "wheels"


def cached_wheels(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[Path]:
    """The cached wheels for onnxruntime==version and flatbuffers, or [] if either is missing."""
    ort = sorted(cache.glob(f"onnxruntime-{version}-cp{KAGGLE_PYTHON.replace('.', '')}-*.whl"))
    flat = sorted(cache.glob("flatbuffers-*.whl"))
    return [*ort, *flat] if ort and flat else []


def pip_download_command(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[str]:
    platforms = [arg for plat in WHEEL_PLATFORMS for arg in ("--platform", plat)]
    return [
        sys.executable, "-m", "pip", "download", "--only-binary=:all:",
        "--python-version", KAGGLE_PYTHON, "--implementation", "cp", *platforms,
        "--no-deps", "--dest", str(cache), f"onnxruntime=={version}", "flatbuffers",
    ]  # fmt: skip


def fetch_wheels(cache: Path, version: str = ONNXRUNTIME_VERSION) -> list[Path]:
    """Download the wheels into `cache` unless already there (network needed only once)."""
    wheels = cached_wheels(cache, version)
    if wheels:
        return wheels
    cache.mkdir(parents=True, exist_ok=True)
    command = pip_download_command(cache, version)
    print("fetching wheels:", " ".join(command))
    result = subprocess.run(command, check=False)
    wheels = cached_wheels(cache, version)
    if result.returncode != 0 or not wheels:
        raise BuildError(
            f"pip download of onnxruntime=={version} for cp{KAGGLE_PYTHON} failed (exit "
            f"{result.returncode}). Fix: check the network, or put the wheels in {cache}."
        )
    return wheels


def copy_wheels(wheels: list[Path], dest: Path) -> None:
    """Replace the wheels in `dest` by `wheels`."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)
