"""workbench/kaggle_image.py: Kaggle's image list, its Python, and the notebooks' overlay venvs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from workbench_support import REPO, write

from workbench import kaggle_image as ki
from workbench.errors import BuildError

ASK = "import importlib.util as u, json; print(json.dumps({n: bool(u.find_spec(n)) for n in %r}))"


def test_the_repository_lists_current_and_next_with_their_sources():
    images = ki.load_images()
    assert {"current", "next"} <= set(images)
    current, upcoming = images["current"], images["next"]
    assert current.minor == "3.12" and upcoming.minor == "3.13"
    assert current.packages["torch"] == "2.10.0" and upcoming.packages["torch"] == "2.11.0"
    assert current.packages["numpy"] == "2.0.2" and upcoming.packages["pandas"] == "2.2.3"
    for image in images.values():
        assert image.source and image.date, f"{image.name}: say where the list came from"
        assert "onnxruntime" not in image.packages  # Kaggle's image has none
        assert "ipykernel==7.4.0" in image.requirements()
    assert current.key() != upcoming.key()


def test_the_cache_key_follows_every_version(tmp_path):
    text = (REPO / "kaggle_images.toml").read_text()
    write(tmp_path / "a.toml", text)
    write(tmp_path / "b.toml", text.replace('numpy = "2.0.2"', 'numpy = "2.0.1"'))
    a, b = ki.load_images(tmp_path / "a.toml"), ki.load_images(tmp_path / "b.toml")
    assert a["current"].key() != b["current"].key() and a["next"].key() == b["next"].key()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('[x]\npython = "3.12"\n', r"\[x.packages\] must list"),
        ('[x]\npython = "twelve"\n[x.packages]\nnumpy = "2"\n', "needs python"),
        ('[x]\npython = "3.12"\n[x.packages]\nonnxruntime = "1"\n', "has no onnxruntime"),
        ("[x\n", "restore kaggle_images.toml"),
    ],
)
def test_a_malformed_list_names_the_file_and_the_fix(tmp_path, entry, message):
    write(tmp_path / "images.toml", entry)
    with pytest.raises(BuildError, match=message) as err:
        ki.load_images(tmp_path / "images.toml")
    assert "images.toml" in str(err.value)


def test_an_unknown_image_lists_the_known_ones():
    with pytest.raises(BuildError, match=r"--kaggle-image nope: .*\['current', 'next'"):
        ki.get_image("nope")


def test_a_missing_python_names_what_was_looked_for(tmp_path):
    environ = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(tmp_path / "bin")}
    with pytest.raises(BuildError, match=r"no working Python 3\.99 found") as err:
        ki.find_python("3.99", environ)
    text = str(err.value)
    assert "pyenv/versions/3.99.*/bin/python3.99" in text and "pyenv install 3.99" in text


def test_python_is_found_under_pyenv_newest_first(tmp_path):
    """A fake pyenv tree whose newest 3.11 is this Python: it is the one found."""
    for version in ("3.11.1", "3.11.10"):
        link = tmp_path / "pyenv" / "versions" / version / "bin" / "python3.11"
        link.parent.mkdir(parents=True)
        link.symlink_to(sys.executable if version == "3.11.10" else "/nonexistent")
    environ = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": ""}
    found = ki.python_candidates("3.11", environ)
    assert found[0].parents[1].name == "3.11.10"
    if sys.version_info[:2] == (3, 11):
        python, version = ki.find_python("3.11", environ)
        assert version.startswith("3.11.") and python.exists()


def test_overlay_hides_onnxruntime_and_keeps_what_a_notebook_installs(tmp_path):
    """The overlay sees the builder's packages but onnxruntime; a package installed inside it
    (here a tiny wheel made on the spot) is importable there, and not in the base nor in a
    second overlay: nothing one notebook installs reaches the next."""
    first = ki.overlay_venv(Path(sys.executable), tmp_path / "first")
    names = ["numpy", "nbformat", "ipykernel", "onnxruntime", "bk_probe_pkg"]
    seen = json.loads(subprocess.check_output([first, "-c", ASK % names], text=True))
    assert seen == {"numpy": True, "nbformat": True, "ipykernel": True, "onnxruntime": False,
                    "bk_probe_pkg": False}  # fmt: skip
    wheel = make_wheel(tmp_path / "dist")
    pip = [first, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check"]
    subprocess.run([*pip, wheel], check=True, capture_output=True)
    seen = json.loads(subprocess.check_output([first, "-c", ASK % names[-1:]], text=True))
    assert seen == {"bk_probe_pkg": True}
    assert list((tmp_path / "first" / "venv").rglob("bk_probe_pkg/__init__.py"))
    second = ki.overlay_venv(Path(sys.executable), tmp_path / "second")
    for python in (second, Path(sys.executable)):
        seen = json.loads(subprocess.check_output([python, "-c", ASK % names[-1:]], text=True))
        assert seen == {"bk_probe_pkg": False}


def make_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel `bk_probe_pkg` (what pip installs, without an index)."""
    import zipfile

    folder.mkdir(parents=True)
    path = folder / "bk_probe_pkg-0.1-py3-none-any.whl"
    info = "bk_probe_pkg-0.1.dist-info"
    files = {
        "bk_probe_pkg/__init__.py": "VALUE = 1\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: bk_probe_pkg\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_hidden_entries():
    hide = ki.HIDDEN_DISTRIBUTIONS
    assert ki._hidden("onnxruntime", hide) and ki._hidden("onnxruntime-1.32.0.dist-info", hide)
    assert not ki._hidden("onnx", hide) and not ki._hidden("onnx-1.23.2.dist-info", hide)
    assert not ki._hidden("onnxruntime_extensions", hide)
