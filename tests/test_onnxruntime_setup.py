"""lib.onnxruntime_setup: the wheel for the running Python, installed offline; when nothing
usable is there, a reason instead of an exception (the notebook then predicts with PyTorch);
the training notebook's ensure_onnxruntime still raises with the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
from conftest import ROOT

import lib.onnxruntime_setup as ort_setup
from lib.onnxruntime_setup import (
    ONNXRUNTIME_VERSION,
    ensure_onnxruntime,
    install_onnxruntime,
    python_abi,
    select_wheel,
    wheel_abis,
)
from workbench.wheels import default_wheel_cache, fetch_wheels

ORT = "onnxruntime-1.32.0-{0}-{0}-manylinux_2_27_x86_64.whl"
FLAT = "flatbuffers-25.2.10-py2.py3-none-any.whl"


def folder_of(path: Path, *names: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in names:
        (path / name).touch()
    return path


def test_wheel_tags():
    assert python_abi((3, 13, 0)) == "cp313"
    assert python_abi() == f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert wheel_abis(ORT.format("cp313")) == {"cp313"}
    assert wheel_abis("x-1.0-cp312.cp313-abi3-manylinux_2_17_x86_64.whl") == {"cp312", "cp313"}


def test_select_wheel_by_abi(tmp_path):
    only_312 = folder_of(tmp_path / "a", ORT.format("cp312"), FLAT)
    assert select_wheel(only_312, "cp313") == (
        None,
        f"wrong ABI: found cp312, need cp313 (in {only_312})",
    )
    every = folder_of(tmp_path / "b", *(ORT.format(f"cp3{n}") for n in (11, 12, 13, 14)), FLAT)
    for n in (11, 12, 13, 14):
        assert select_wheel(every, f"cp3{n}") == (every / ORT.format(f"cp3{n}"), "")
    assert select_wheel(folder_of(tmp_path / "c", FLAT), "cp313")[1].endswith(
        "no onnxruntime wheel"
    )
    assert "does not exist" in select_wheel(tmp_path / "absent", "cp313")[1]


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """`import onnxruntime` fails, as on Kaggle's image before the install cell."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def fake_pip(monkeypatch, returncode: int = 0, installs: bool = True) -> list:
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        if installs and returncode == 0:
            monkeypatch.setitem(sys.modules, "onnxruntime", onnxruntime)  # "installed"
        return subprocess.CompletedProcess(command, returncode, "", "ERROR: disk full")

    monkeypatch.setattr(ort_setup.subprocess, "run", run)
    return calls


def test_install_reports_instead_of_raising(tmp_path, monkeypatch, no_onnxruntime, capsys):
    calls = fake_pip(monkeypatch)
    monkeypatch.setattr(ort_setup, "python_abi", lambda: "cp313")  # as on Kaggle's next image
    wrong = install_onnxruntime(folder_of(tmp_path / "w", ORT.format("cp312"), FLAT))
    assert not wrong.usable and wrong.abi == "cp313" and wrong.wheel is None
    assert wrong.reason.startswith("wrong ABI: found cp312, need cp313")
    assert "no wheels dataset" in install_onnxruntime(None).reason
    assert "does not exist" in install_onnxruntime(tmp_path / "absent").reason
    assert calls == []  # pip never ran for an unusable folder

    folder = folder_of(tmp_path / "ok", ORT.format("cp312"), ORT.format("cp313"), FLAT)
    done = install_onnxruntime(folder)
    assert done.usable and done.reason == "" and done.wheel == ORT.format("cp313")
    assert done.python == sys.version.split()[0]
    assert calls[0][1:] == [
        "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-index",
        "--find-links", str(folder), str(folder / ORT.format("cp313")), "flatbuffers",
    ]  # fmt: skip
    assert f"installing {ORT.format('cp313')}" in capsys.readouterr().out


def test_pip_or_import_failure_is_a_reason(tmp_path, monkeypatch, no_onnxruntime):
    monkeypatch.setattr(ort_setup, "python_abi", lambda: "cp313")
    folder = folder_of(tmp_path, ORT.format("cp313"), FLAT)
    fake_pip(monkeypatch, returncode=1)
    failed = install_onnxruntime(folder)
    assert not failed.usable and "pip install" in failed.reason and "disk full" in failed.reason
    fake_pip(monkeypatch, installs=False)  # pip "succeeds" but the module still cannot import
    broken = install_onnxruntime(folder)
    assert not broken.usable and broken.reason.startswith("import onnxruntime failed after")


def test_ensure_onnxruntime_still_raises_for_the_training_notebook(tmp_path, monkeypatch):
    assert ensure_onnxruntime(None) == onnxruntime.__version__  # installed: folder not needed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeError, match="attach the onnxruntime wheels dataset"):
        ensure_onnxruntime(tmp_path / "absent")
    calls = fake_pip(monkeypatch)
    assert ensure_onnxruntime(None, allow_download=True) == onnxruntime.__version__  # training
    assert calls[0][-2:] == [f"onnxruntime=={ONNXRUNTIME_VERSION}", "flatbuffers"]


def test_the_pinned_version_is_the_one_tested_here():
    assert onnxruntime.__version__ == ONNXRUNTIME_VERSION


# --- a real offline install on another Python ---------------------------------------------

OTHER_PYTHON = Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python3.13"
# What onnxruntime 1.32 needs from Kaggle's next image (Python 3.13): its numpy, protobuf and
# packaging (lib/../birdclef2023.md: numpy 2.1.3; protobuf forced to 5.29.5 by Kaggle).
IMAGE_PINS = ("numpy==2.1.3", "protobuf==5.29.5", "packaging==24.2")
PROBE = """
import json, runpy, sys
from dataclasses import asdict
setup = runpy.run_path(sys.argv[1])  # the module alone, as the notebook's inlined cell runs it
print(json.dumps([asdict(setup["install_onnxruntime"](folder)) for folder in sys.argv[2:]]))
"""


def base_venv(python: Path, cache: Path) -> Path:
    """A venv of `python` with IMAGE_PINS from PyPI, built once (renamed when complete)."""
    venv = cache / ("cp313-" + "-".join(p.replace("==", "") for p in IMAGE_PINS))
    if (venv / "bin" / "python").exists():
        return venv
    building = cache / f"{venv.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([str(python), "-m", "venv", str(building)], check=True)
    pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--only-binary=:all:"]
    subprocess.run([*pip, *IMAGE_PINS], check=True, timeout=600)
    try:
        building.rename(venv)
    except OSError:  # another run finished first
        shutil.rmtree(building, ignore_errors=True)
    return venv


@pytest.mark.slow
def test_real_offline_install_picks_the_wheel_of_python_3_13(tmp_path):
    """In a Python 3.13 venv without onnxruntime: a folder with only the cp312 wheel is refused
    (wrong ABI, nothing installed), then the builder's full wheels folder installs cp313 and
    onnxruntime imports, with no index and a dead proxy (no network)."""
    if not OTHER_PYTHON.exists():
        pytest.skip(f"no Python 3.13 at {OTHER_PYTHON}: `pyenv install 3.13.0`")
    cache = default_wheel_cache(os.environ)  # the builder's cache: downloaded once
    wheels = fetch_wheels(cache)
    only_312 = tmp_path / "only312"
    only_312.mkdir()
    shutil.copy2(next(w for w in wheels if "-cp312-" in w.name), only_312)
    full = tmp_path / "full"
    full.mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, full)
    venv = tmp_path / "venv"
    shutil.copytree(base_venv(OTHER_PYTHON, cache.parent / "kaggle-python"), venv, symlinks=True)
    dead = "http://127.0.0.1:9"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PIP_NO_INDEX": "1"}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1", "HTTPS_PROXY": dead}
    command = [venv / "bin" / "python", "-c", PROBE, ROOT / "lib" / "onnxruntime_setup.py"]
    done = subprocess.run(
        [str(c) for c in [*command, only_312, full]],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    refused, installed = json.loads(done.stdout.strip().splitlines()[-1])
    assert refused["python"].startswith("3.13.") and refused["abi"] == "cp313"
    assert refused["version"] is None and refused["reason"].startswith(
        "wrong ABI: found cp312, need cp313"
    )
    assert installed["reason"] == "" and installed["version"] == ONNXRUNTIME_VERSION
    assert installed["wheel"].startswith(f"onnxruntime-{ONNXRUNTIME_VERSION}-cp313-cp313-")
    assert f"installing {installed['wheel']}" in done.stdout
    shutil.rmtree(venv)
