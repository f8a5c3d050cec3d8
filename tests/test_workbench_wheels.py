"""workbench/wheels.py: onnxruntime wheels for Kaggle's image, one version everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from workbench_support import REPO, build_real_table, write

import workbench.wheels as wheels
from lib.onnxruntime_setup import ONNXRUNTIME_VERSION
from workbench.errors import BuildError


def test_requirements_pin_the_version_the_notebooks_install():
    """requirements.txt (what is tested here) and lib.onnxruntime_setup (what the notebooks
    install, and the wheels fetched for them) name the same onnxruntime."""
    text = (REPO / "requirements.txt").read_text()
    pins = re.findall(r"(?im)^\s*onnxruntime\s*==\s*([^\s;#]+)", text)
    assert pins == [ONNXRUNTIME_VERSION]


def test_pip_download_command_targets_kaggle_image():
    command = wheels.pip_download_command(Path("/c"))
    text = " ".join(command)
    assert "--only-binary=:all:" in text and "--python-version 3.12" in text
    assert "--no-deps" in text and f"onnxruntime=={ONNXRUNTIME_VERSION}" in command
    assert "flatbuffers" in command
    assert text.count("--platform") == 4 and "manylinux2014_x86_64" in text


def fake_wheels(cache: Path, version: str) -> None:
    write(cache / f"onnxruntime-{version}-cp312-cp312-manylinux_2_27_x86_64.whl", "w")
    write(cache / f"onnxruntime-{version}-cp311-cp311-manylinux_2_27_x86_64.whl", "wrong python")
    write(cache / "onnxruntime-0.0.1-cp312-cp312-manylinux_2_27_x86_64.whl", "wrong version")
    write(cache / "flatbuffers-25.0.0-py2.py3-none-any.whl", "w")


def test_cached_wheels_are_used_without_network(tmp_path, monkeypatch):
    fake_wheels(tmp_path / "cache", ONNXRUNTIME_VERSION)

    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the cache holds the wheels")

    monkeypatch.setattr(wheels.subprocess, "run", no_network)
    _, out = build_real_table(tmp_path, fetch_wheels=True)
    names = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    assert names == [
        "flatbuffers-25.0.0-py2.py3-none-any.whl",
        f"onnxruntime-{ONNXRUNTIME_VERSION}-cp312-cp312-manylinux_2_27_x86_64.whl",
    ]


def test_without_cached_wheels_the_build_says_how_to_get_them(tmp_path, capsys):
    _, out = build_real_table(tmp_path)
    assert not list((out / "wheels").glob("*.whl"))
    assert "run with --wheels once" in capsys.readouterr().out


def test_missing_wheels_fail_with_fix(tmp_path, monkeypatch):
    class Failed:
        returncode = 1

    monkeypatch.setattr(wheels.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(BuildError, match="pip download"):
        wheels.fetch_wheels(tmp_path / "cache", "1.2.3")
