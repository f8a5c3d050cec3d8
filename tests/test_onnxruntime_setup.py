"""lib.onnxruntime_setup: installing onnxruntime where Kaggle's image lacks it (from the wheels
dataset offline, from PyPI in the training notebook), and failures that say what to attach."""

from __future__ import annotations

import sys

import pytest

from lib.onnxruntime_setup import ONNXRUNTIME_VERSION, ensure_onnxruntime


def test_ensure_onnxruntime(tmp_path, monkeypatch):
    import onnxruntime

    assert ensure_onnxruntime(None) == onnxruntime.__version__  # installed: folder not needed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # now `import onnxruntime` fails
    with pytest.raises(RuntimeError, match="attach the onnxruntime wheels dataset"):
        ensure_onnxruntime(tmp_path / "absent")
    with pytest.raises(RuntimeError, match="holds no onnxruntime wheel"):
        ensure_onnxruntime(tmp_path)
    (tmp_path / "onnxruntime-1.32.0-cp312-cp312-manylinux_2_27_x86_64.whl").touch()
    (tmp_path / "flatbuffers-25.2.10-py2.py3-none-any.whl").touch()
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        monkeypatch.setitem(sys.modules, "onnxruntime", onnxruntime)  # "installed"
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr("lib.onnxruntime_setup.subprocess.run", fake_pip)
    assert ensure_onnxruntime(tmp_path) == onnxruntime.__version__
    assert calls[0][1:] == [
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "--find-links",
        str(tmp_path),
        "onnxruntime",
        "flatbuffers",
    ]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert ensure_onnxruntime(None, allow_download=True) == onnxruntime.__version__  # training
    assert calls[1][-2:] == [f"onnxruntime=={ONNXRUNTIME_VERSION}", "flatbuffers"]


def test_the_pinned_version_is_the_one_tested_here():
    import onnxruntime

    assert onnxruntime.__version__ == ONNXRUNTIME_VERSION
