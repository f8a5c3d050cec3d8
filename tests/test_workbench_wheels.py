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


ABIS = ("cp311", "cp312", "cp313", "cp314")


def test_pip_download_command_targets_each_python():
    for python in wheels.KAGGLE_PYTHONS:
        command = wheels.pip_download_command(Path("/c"), python)
        text = " ".join(command)
        assert "--only-binary=:all:" in text and f"--python-version {python}" in text
        assert "--no-deps" in text and f"onnxruntime=={ONNXRUNTIME_VERSION}" in command
        assert "flatbuffers" in command
        assert text.count("--platform") == 4 and "manylinux2014_x86_64" in text
    assert [wheels.abi_tag(p) for p in wheels.KAGGLE_PYTHONS] == list(ABIS)


def ort_name(version: str, abi: str) -> str:
    return f"onnxruntime-{version}-{abi}-{abi}-manylinux_2_27_x86_64.whl"


def fake_wheels(cache: Path, version: str, abis=ABIS) -> None:
    for abi in abis:
        write(cache / ort_name(version, abi), "w")
    write(cache / ort_name("0.0.1", "cp313"), "wrong version")
    write(cache / "flatbuffers-25.0.0-py2.py3-none-any.whl", "w")


def test_cached_wheels_are_used_without_network(tmp_path, monkeypatch, capsys):
    fake_wheels(tmp_path / "cache", ONNXRUNTIME_VERSION)

    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the cache holds the wheels")

    monkeypatch.setattr(wheels.subprocess, "run", no_network)
    _, out = build_real_table(tmp_path, fetch_wheels=True)
    names = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    assert names == [
        "flatbuffers-25.0.0-py2.py3-none-any.whl",
        *(ort_name(ONNXRUNTIME_VERSION, abi) for abi in ABIS),
    ]
    assert wheels.describe_wheels(wheels.cached_wheels(tmp_path / "cache")) == (
        f"onnxruntime {ONNXRUNTIME_VERSION} for cp311, cp312, cp313, cp314 + flatbuffers"
    )


def test_a_cache_with_some_abis_is_completed_not_used(tmp_path, monkeypatch):
    """A cache from the cp312-only days: only the missing Pythons are downloaded."""
    cache = tmp_path / "cache"
    fake_wheels(cache, ONNXRUNTIME_VERSION, abis=("cp312",))
    assert wheels.cached_wheels(cache) == []  # not silently shipped without cp313
    assert wheels.missing_pythons(cache) == ["3.11", "3.13", "3.14"]
    asked = []

    def download(command, **kwargs):
        python = command[command.index("--python-version") + 1]
        asked.append(python)
        write(cache / ort_name(ONNXRUNTIME_VERSION, wheels.abi_tag(python)), "w")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(wheels.subprocess, "run", download)
    got = wheels.fetch_wheels(cache)
    assert asked == ["3.11", "3.13", "3.14"]
    assert [p.name for p in got] == [
        *(ort_name(ONNXRUNTIME_VERSION, abi) for abi in ABIS),
        "flatbuffers-25.0.0-py2.py3-none-any.whl",
    ]


def test_without_cached_wheels_the_build_says_how_to_get_them(tmp_path, capsys):
    _, out = build_real_table(tmp_path)
    assert not list((out / "wheels").glob("*.whl"))
    assert "run with --wheels once" in capsys.readouterr().out


def test_missing_wheels_fail_with_fix(tmp_path, monkeypatch):
    class Failed:
        returncode = 1

    monkeypatch.setattr(wheels.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(BuildError, match="pip download.*still missing: cp311, cp312, cp313, cp314"):
        wheels.fetch_wheels(tmp_path / "cache", "1.2.3")
