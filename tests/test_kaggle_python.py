"""The wheels dataset on Kaggle's Python: the notebook's install cell really installs, offline.

The rehearsal's notebooks run with onnxruntime hidden (workbench/kaggle_image.py; the full image
with `--kaggle-image`). Here, smaller and faster, a Python 3.12 venv holds only what Kaggle's
image has that onnxruntime needs; `lib/onnxruntime_setup.py` runs in it, without network, against
the wheels folder built as the builder builds it; then a session runs an exported fold and must
agree with the host's onnxruntime. Skipped only where no Python 3.12 exists.

Cached between runs under <XDG cache>/birdclef-kit/ (the builder's wheel cache and a base venv
keyed by the versions): the first run downloads about 47 MB, later runs need no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_BACKBONE

from lib.config import Config
from lib.export import export_onnx
from lib.features import LogMel
from lib.infer import make_session
from lib.model import build_model
from lib.models_dataset import INPUT_NAME, OUTPUT_NAME, fold_file
from lib.onnxruntime_setup import ONNXRUNTIME_VERSION
from workbench.kaggle_image import get_image
from workbench.wheels import copy_wheels, default_wheel_cache, fetch_wheels

pytestmark = pytest.mark.slow

KAGGLE_PYTHON = (3, 12)
# What Kaggle's image holds that onnxruntime 1.32's wheel requires (numpy>=1.21.6, packaging,
# protobuf>=4.25.8; flatbuffers ships in the wheels dataset): numpy and the forced protobuf as
# kaggle_images.toml lists them for the current image; packaging is pinned by neither Colab's
# list nor Kaggle's: 24.2, a recent release, chosen.
_CURRENT = get_image("current")
KAGGLE_IMAGE_PINS = {
    "numpy": _CURRENT.packages["numpy"],
    "protobuf": {**_CURRENT.packages, **_CURRENT.forced}["protobuf"],
    "packaging": "24.2",
}
ASK_VERSION = "import sys; print(sys.version.split()[0]); print(sys.executable)"
OFFLINE_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every attempt fails
PROBE = Path(__file__).with_name("kaggle_python_probe.py")
SETUP_PY = ROOT / "lib" / "onnxruntime_setup.py"
TINY = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)
CLASSES = ["abethr1", "comfin", "yewgre1"]


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def python_candidates() -> list[Path]:
    """Pythons that may be 3.12: pyenv's installs (newest first), then `python3.12` on PATH."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = pyenv_root / "versions"
    found = [v / "bin" / "python3.12" for v in versions.glob("3.12*")] if versions.is_dir() else []
    found.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p.parents[1].name)], reverse=True)
    on_path = shutil.which("python3.12")
    return found + ([Path(on_path)] if on_path else [])


def find_kaggle_python() -> tuple[Path, str] | None:
    """The real executable and full version of a working Python 3.12 (a pyenv shim resolved)."""
    for candidate in python_candidates():
        try:
            answer = run([candidate, "-c", ASK_VERSION], timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version, _, executable = answer.stdout.strip().partition("\n")
        if answer.returncode == 0 and version.split(".")[:2] == [str(n) for n in KAGGLE_PYTHON]:
            return Path(executable), version
    return None


def base_venv(python: Path, version: str, cache: Path) -> Path:
    """A venv of `python` holding KAGGLE_IMAGE_PINS from PyPI, built once per versions key.

    Built under a temporary name and renamed, so a half-built venv is never taken as the cache.
    """
    pins = "-".join(f"{name}{v}" for name, v in KAGGLE_IMAGE_PINS.items())
    venv = cache / f"cp{version}-{pins}"
    if (venv / "bin" / "python").exists():
        return venv
    building = cache / f"{venv.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    made = run([python, "-m", "venv", building])
    assert made.returncode == 0, (
        f"{python} -m venv failed: {made.stderr[-1500:]}\nFix: install Python 3.12's venv "
        "module (Debian/Ubuntu: python3.12-venv)."
    )
    pins_spec = [f"{name}=={v}" for name, v in KAGGLE_IMAGE_PINS.items()]
    pip = [building / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check"]
    installed = run([*pip, "--only-binary=:all:", *pins_spec])
    assert installed.returncode == 0, (
        f"installing {pins_spec} from PyPI into {building} failed: {installed.stderr[-1500:]}\n"
        "Fix: the first run needs PyPI (later runs reuse the cached venv)."
    )
    try:
        building.rename(venv)
    except OSError:  # another run finished first: keep its venv
        shutil.rmtree(building, ignore_errors=True)
    return venv


def offline_prefix() -> list[str]:
    """`unshare --net` (a network namespace with no interface) where allowed, else []."""
    for prefix in (["unshare", "--net"], ["unshare", "--net", "--map-root-user"]):
        if shutil.which("unshare") and run([*prefix, "true"]).returncode == 0:
            return prefix
    return []


def offline_env(venv: Path, home: Path) -> dict[str, str]:
    """A bare environment: no pip config of this machine (its find-links or extra indexes would
    let a broken wheels folder pass), no index, and a proxy where nothing listens."""
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "OMP_NUM_THREADS": "1",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = OFFLINE_PROXY
    return env


def exported_fold(folder: Path) -> tuple[Path, np.ndarray]:
    """A tiny model exported by lib.export, and a log-mel batch (4, 1, 64, frames) for it."""
    torch.manual_seed(0)
    model = build_model(TINY, len(CLASSES), pretrained=False)
    path = folder / fold_file(0)
    export_onnx(model, path, TINY, CLASSES)
    rng = np.random.default_rng(0)
    t = np.arange(TINY.clip_samples) / TINY.sample_rate
    tone = 0.2 * np.sin(2 * np.pi * 3000 * t)
    waves = np.stack([tone * k + rng.normal(0, 0.02, t.shape) for k in range(4)])
    with torch.inference_mode():
        mel = LogMel(TINY)(torch.from_numpy(waves.astype(np.float32))).numpy()
    return path, mel


def test_notebook_installs_onnxruntime_offline_on_kaggle_python(tmp_path):
    found = find_kaggle_python()
    if found is None:
        looked = [str(p) for p in python_candidates()] or ["pyenv's versions/3.12*", "PATH"]
        pytest.skip(f"no Python 3.12 (Kaggle's) found; looked at {looked}. `pyenv install 3.12`")
    python, version = found
    cache = default_wheel_cache(os.environ)  # the builder's own wheel cache
    wheels = tmp_path / "wheels"
    copy_wheels(fetch_wheels(cache, ONNXRUNTIME_VERSION), wheels)
    assert sorted({p.name.split("-")[0] for p in wheels.iterdir()}) == [
        "flatbuffers",
        "onnxruntime",
    ]

    venv = tmp_path / "venv"  # a copy: the install must not reach the cached base
    shutil.copytree(base_venv(python, version, cache.parent / "kaggle-python"), venv, symlinks=True)
    model, mel = exported_fold(tmp_path)
    np.save(tmp_path / "mel.npy", mel)

    prefix = offline_prefix()
    args = [SETUP_PY, wheels, model, tmp_path / "mel.npy", tmp_path / "probs.npy"]
    done = run(
        [*prefix, venv / "bin" / "python", PROBE, *args],
        env=offline_env(venv, tmp_path / "home"),
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, f"the probe failed on Python {version}:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["python"] == version and version.startswith("3.12.")
    if prefix:  # without unshare only pip is offline (--no-index, dead proxy), not the process
        assert not report["network_reachable"], "unshare --net left the network reachable"
    assert not report["onnxruntime_before"], "the venv already had onnxruntime: nothing installed"
    assert report["ensure_returned"] == ONNXRUNTIME_VERSION
    ort_version, ort_file = report["onnxruntime"]
    assert ort_version == ONNXRUNTIME_VERSION and Path(ort_file).is_relative_to(venv)
    added = set(report["installed_after"]) - set(report["installed_before"])
    assert added == {"onnxruntime", "flatbuffers"}, f"the install changed {added}"
    assert set(report["installed_before"]) - set(report["installed_after"]) == set()
    assert report["numpy_after"] == report["numpy_before"]
    assert report["numpy_after"][0] == KAGGLE_IMAGE_PINS["numpy"]  # the image's numpy kept
    assert report["io"] == [[INPUT_NAME], [OUTPUT_NAME]]

    kaggle_probs = np.load(tmp_path / "probs.npy")
    host = make_session(model, threads=1, shared_arena=False)
    host_probs = host.run([OUTPUT_NAME], {INPUT_NAME: mel})[0]
    assert kaggle_probs.shape == (len(mel), len(CLASSES)) and np.isfinite(kaggle_probs).all()
    np.testing.assert_allclose(kaggle_probs, host_probs, atol=1e-4, rtol=0)
    shutil.rmtree(venv)  # ~130 MB per run otherwise kept by pytest's tmp_path; kept on failure
    shutil.rmtree(wheels)
