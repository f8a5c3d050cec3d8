"""build_kernels.py: inlining, notebooks, Kaggle metadata, datasets, execution, rehearsal.

Golden files: tests/golden/expected/ pins what a build of the fixture in tests/golden/fixture/
writes. After an intended change to the builder, regenerate and review the diff:

    BIRDCLEF_REGEN_GOLDEN=1 pytest tests/test_build_kernels.py -k golden
    git diff tests/golden/
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
from pathlib import Path

import jupytext
import nbformat
import pytest

import build_kernels as bk  # importable: tests/conftest.py puts the repository on sys.path

REPO = bk.REPO

GOLDEN = REPO / "tests" / "golden"
FIXTURE_LIB = GOLDEN / "fixture" / "lib"
FIXTURE_KERNELS = GOLDEN / "fixture" / "kernels"
DEMO_TABLE = {"demo": bk.KernelSpec("demo-kernel-fixture", "Demo Kernel Fixture", False, False)}
DEMO_DATASETS = {"models": bk.DatasetSpec("demo-models-fixture", "Demo Models Fixture")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def args_for(tmp_path: Path, *extra: str):
    """Parsed CLI arguments that never touch the user's build/, cache or rehearsal folders."""
    return bk.parse_args(
        ["--out", str(tmp_path / "build"), "--wheel-cache", str(tmp_path / "cache"), *extra]
    )


def build_demo(tmp_path: Path, out: str = "build"):
    args = bk.parse_args(
        [
            "--kernels-dir", str(FIXTURE_KERNELS), "--lib-dir", str(FIXTURE_LIB),
            "--out", str(tmp_path / out), "--owner", "golden-owner",
        ]
    )  # fmt: skip
    bk.build(args, kernels=DEMO_TABLE, datasets=DEMO_DATASETS)
    return tmp_path / out


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- inlining ------------------------------------------------------------------------------


def test_fixture_notebook_is_self_contained(tmp_path):
    nb = read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb")
    nbformat.validate(nb)
    assert bk.lib_imports_left(nb) == []
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    headers = [
        f"# ---- lib/{m}.py (inlined by build_kernels.py) ----" for m in ("base", "mid", "top")
    ]
    positions = [code.index(h) for h in headers]
    assert positions == sorted(positions)  # dependencies first
    assert all(code.count(h) == 1 for h in headers)  # once per notebook, though imported twice
    assert "base main block" not in code and "if __name__" not in code
    assert "## %% an indented cell marker" in code and "## In[7]:" in code
    assert "length = norm" in code  # aliased import inside the library
    first = nb.cells[1].source
    assert first.startswith("from __future__ import annotations\n")
    assert first.count("from __future__") == 1
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_survives_jupytext_roundtrip(tmp_path):
    """Neutralised markers: converting the notebook to py:percent and back keeps its cells."""
    nb = read_nb(build_demo(tmp_path) / "demo" / "demo.ipynb")
    back = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    assert [c.source for c in back.cells] == [c.source for c in nb.cells]


def test_rebuild_is_byte_identical(tmp_path):
    first = tree_bytes(build_demo(tmp_path, "a"))
    second = tree_bytes(build_demo(tmp_path, "b"))
    assert first == second and "demo/demo.ipynb" in first


def test_golden_build(tmp_path):
    """What a build of the fixture writes, pinned (see the module docstring to regenerate)."""
    built = tree_bytes(build_demo(tmp_path))
    expected_dir = GOLDEN / "expected"
    if os.environ.get("BIRDCLEF_REGEN_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for name, data in built.items():
            (expected_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / name).write_bytes(data)
    expected = tree_bytes(expected_dir)
    assert sorted(built) == sorted(expected)
    for name in built:
        assert built[name] == expected[name], f"{name} differs from tests/golden/expected/{name}"


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("def f():\n    from lib.base import x\n", "not at the top level"),
        ("from lib import base\n", "unsupported lib import"),
        ("import lib.base\n", "unsupported lib import"),
        ("from lib.base import *\n", "unsupported lib import"),
        ("from .base import x\n", "unsupported lib import"),
        ("from lib.missing import x\n", "no such library module"),
        ("from lib.bad import x\n", "import cycle"),
        ("from pathlib import Path\n\nROOT = Path(__file__)\n", "__file__"),
        ('TEXT = """\n# %%\n"""\n', "inside a string"),
        ("from lib.base import x\n\n\ndef x():\n    pass\n", "also defined, differently"),
    ],
)
def test_library_problems_fail_loudly(tmp_path, module, message):
    lib = tmp_path / "lib"
    write(lib / "base.py", "x = 1\n")
    write(lib / "bad.py", "from lib.bad2 import y\n")
    write(lib / "bad2.py", "from lib.bad import x\n\ny = 2\n")
    write(lib / "mod.py", module)
    source = write(tmp_path / "kernels" / "k.py", "# %%\nfrom lib.mod import x\n")
    with pytest.raises(bk.BuildError, match=message) as err:
        bk.build_notebook(source, lib)
    assert str(lib) in str(err.value) or "cycle" in message


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("if True:\n    from lib.base import x\n", "not at the top level"),
        ("import lib\n", "unsupported lib import"),
        ("x = 1; from lib.base import x\n", "own line"),
        ("%%time\nfrom lib.base import x\n", "cell magics"),
    ],
)
def test_kernel_cell_problems_fail_loudly(tmp_path, cell, message):
    write(tmp_path / "lib" / "base.py", "x = 1\n")
    source = write(tmp_path / "kernels" / "k.py", "# %%\n" + cell)
    with pytest.raises(bk.BuildError, match=message) as err:
        bk.build_notebook(source, tmp_path / "lib")
    assert str(source) in str(err.value)


def test_identical_definitions_in_two_modules_are_allowed(tmp_path):
    write(tmp_path / "lib" / "a.py", "import numpy as np\n\nRATE = 32000\n")
    write(tmp_path / "lib" / "b.py", "import numpy as np\n\nRATE = 32000\n")
    source = write(tmp_path / "k.py", "# %%\nfrom lib.a import RATE\nfrom lib.b import np\n")
    nb = bk.build_notebook(source, tmp_path / "lib")
    assert bk.lib_imports_left(nb) == []


def test_lib_imports_left_finds_survivors():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('"""from lib.x import y is fine in a docstring"""'),
        nbformat.v4.new_code_cell("import os\nimport lib.config"),
        nbformat.v4.new_code_cell("def f():\n    from lib.audio import load_audio"),
        nbformat.v4.new_code_cell("%%capture\nfrom lib.config import Config"),
    ]
    left = bk.lib_imports_left(nb)
    assert len(left) == 3 and left[0].startswith("cell 1") and left[2].startswith("cell 3")


# --- metadata and datasets -----------------------------------------------------------------

PLACEHOLDER_KERNEL = "# %%\nfrom lib.config import Config\n\nprint(Config().n_mels)\n"


def build_real_table(tmp_path: Path, *extra: str):
    """Build placeholder train/infer sources with the real KERNELS and DATASETS tables."""
    kernels = tmp_path / "kernels"
    for name in bk.KERNELS:
        write(kernels / f"{name}.py", PLACEHOLDER_KERNEL)
    args = args_for(tmp_path, "--kernels-dir", str(kernels), "--owner", "someone", *extra)
    return bk.build(args), tmp_path / "build"


def test_kernel_metadata_per_kernel(tmp_path):
    from slugify import slugify  # installed with kaggle; the CLI checks titles with it

    folders, out = build_real_table(tmp_path)
    assert set(folders) == {"train", "infer"}
    for name, spec in bk.KERNELS.items():
        meta = json.loads((out / name / "kernel-metadata.json").read_text())
        assert meta["id"] == f"someone/{spec.slug}" and len(spec.slug) >= 5
        assert len(meta["title"]) >= 5 and slugify(meta["title"]) == spec.slug
        assert (out / name / meta["code_file"]).is_file()
        assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
        assert meta["is_private"] is True
        assert meta["competition_sources"][0] == "birdclef-2023"
        nbformat.validate(read_nb(out / name / meta["code_file"]))
    train = json.loads((out / "train" / "kernel-metadata.json").read_text())
    infer = json.loads((out / "infer" / "kernel-metadata.json").read_text())
    assert train["enable_gpu"] is True and train["enable_internet"] is True
    assert infer["enable_gpu"] is False and infer["enable_internet"] is False
    assert sorted(infer["dataset_sources"]) == sorted(
        [f"someone/{bk.MODELS_DATASET_SLUG}", f"someone/{bk.WHEELS_DATASET_SLUG}"]
    )
    assert infer["competition_sources"] == ["birdclef-2023"]  # scoring attaches only that
    # training also reads the recipe's pre-training sources (optional inside the notebook)
    assert set(train["competition_sources"]) == {
        "birdclef-2023", "birdsong-recognition", "birdclef-2021", "birdclef-2022"
    }  # fmt: skip
    assert all(d.startswith("rohanrao/xeno-canto") for d in train["dataset_sources"])


def test_dataset_folders_and_metadata(tmp_path):
    from slugify import slugify

    _, out = build_real_table(tmp_path)
    for key, spec in bk.DATASETS.items():
        meta = json.loads((out / key / "dataset-metadata.json").read_text())
        assert meta == {
            "id": f"someone/{spec.slug}",
            "title": spec.title,
            "licenses": [{"name": "CC0-1.0"}],
        }
        assert 6 <= len(meta["title"]) <= 50 and 6 <= len(spec.slug) <= 50
        assert slugify(spec.title) == spec.slug


def test_models_from_copies_exports_only(tmp_path):
    run = tmp_path / "run"
    for name in ("fold0.onnx", "fold1.onnx", "config.json", "classes.txt", "model.pt", "log.csv"):
        write(run / name, name)
    write(tmp_path / "build" / "models" / "stale.onnx", "old")
    _, out = build_real_table(tmp_path, "--models-from", str(run))
    files = sorted(p.name for p in (out / "models").iterdir())
    assert files == [
        "classes.txt",
        "config.json",
        "dataset-metadata.json",
        "fold0.onnx",
        "fold1.onnx",
    ]


def test_models_from_finds_the_export_subfolder(tmp_path):
    run = tmp_path / "run"
    for name in ("fold0/best.pt", "fold0/history.json", "models/fold0.onnx", "models/classes.json"):
        write(run / name, name)
    assert bk.export_folder(run) == run / "models"
    copied = bk.copy_models(run, tmp_path / "dataset")
    assert sorted(p.name for p in copied) == ["classes.json", "fold0.onnx"]


@pytest.mark.parametrize("onnx", [[], ["a/fold0.onnx", "b/fold0.onnx"]])
def test_models_from_without_one_export_folder_fails(tmp_path, onnx):
    for name in ["fold0/best.pt", *onnx]:
        write(tmp_path / "run" / name, "x")
    args = args_for(
        tmp_path, "--kernels-dir", str(tmp_path), "--models-from", str(tmp_path / "run")
    )
    with pytest.raises(bk.BuildError, match=r"need one folder of exported \*\.onnx"):
        bk.build(args)


def test_unknown_kernel_source_fails(tmp_path):
    write(tmp_path / "kernels" / "extra.py", "# %%\nprint(1)\n")
    args = args_for(tmp_path, "--kernels-dir", str(tmp_path / "kernels"))
    with pytest.raises(bk.BuildError, match="no KERNELS entry for \\['extra'\\]"):
        bk.build(args)


def test_plain_build_writes_dataset_metadata_even_without_kernels(tmp_path, capsys):
    empty = tmp_path / "kernels"
    empty.mkdir()
    assert bk.main(["--kernels-dir", str(empty), "--out", str(tmp_path / "build"),
                    "--wheel-cache", str(tmp_path / "cache"), "--owner", "me"]) == 0  # fmt: skip
    assert (tmp_path / "build" / "models" / "dataset-metadata.json").is_file()
    assert (tmp_path / "build" / "wheels" / "dataset-metadata.json").is_file()
    assert "--wheels" in capsys.readouterr().out  # says how to get the wheels


def test_main_reports_errors_with_exit_code(tmp_path, capsys):
    code = bk.main(["--kernels-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert code == 1 and "kernels folder not found" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        bk.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--kernels-dir", "--lib-dir", "--out", "--owner", "--models-from", "--wheels",
                   "--wheel-cache", "--rehearse", "--workdir", "--rehearse-config",
                   "--rehearse-spec", "--cell-timeout", "--min-score"):  # fmt: skip
        assert option in text


# --- owner ---------------------------------------------------------------------------------


def test_owner_resolution_order(tmp_path):
    home = tmp_path / "home"
    write(home / ".config" / "kaggle" / "kaggle.json", json.dumps({"username": "xdg", "key": "k"}))
    assert bk.resolve_owner(None, {}, home)[0] == "xdg"
    write(home / ".kaggle" / "kaggle.json", json.dumps({"username": "dotkaggle", "key": "k"}))
    assert bk.resolve_owner(None, {}, home)[0] == "dotkaggle"
    config_dir = tmp_path / "cfg"
    write(config_dir / "kaggle.json", json.dumps({"username": "configdir"}))
    env = {"KAGGLE_CONFIG_DIR": str(config_dir)}
    assert bk.resolve_owner(None, env, home) == ("configdir", str(config_dir / "kaggle.json"))
    env["KAGGLE_USERNAME"] = "envuser"
    assert bk.resolve_owner(None, env, home) == ("envuser", "$KAGGLE_USERNAME")
    assert bk.resolve_owner("cli", env, home) == ("cli", "--owner")
    assert bk.resolve_owner(None, {}, tmp_path / "nobody") == (None, "nowhere")


def test_broken_kaggle_json_names_the_file(tmp_path):
    write(tmp_path / ".kaggle" / "kaggle.json", "{not json")
    with pytest.raises(bk.BuildError, match="kaggle.json"):
        bk.resolve_owner(None, {}, tmp_path)


def test_no_owner_builds_with_placeholder_and_explains(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-config"))
    write(tmp_path / "kernels" / "infer.py", PLACEHOLDER_KERNEL)
    args = args_for(tmp_path, "--kernels-dir", str(tmp_path / "kernels"))
    bk.build(args)
    meta = json.loads((tmp_path / "build" / "infer" / "kernel-metadata.json").read_text())
    assert meta["id"].startswith(bk.OWNER_PLACEHOLDER + "/")
    out = capsys.readouterr().out
    assert "kernel-metadata.json: id" in out and "dataset-metadata.json: id" in out
    assert "--owner" in out and "KAGGLE_USERNAME" in out


# --- wheels --------------------------------------------------------------------------------


def test_pinned_onnxruntime_version_comes_from_requirements():
    version = bk.pinned_version(REPO / "requirements.txt")
    assert version and version[0].isdigit()


def test_pip_download_command_targets_kaggle_image():
    command = bk.pip_download_command(Path("/c"), "1.2.3")
    text = " ".join(command)
    assert "--only-binary=:all:" in text and "--python-version 3.12" in text
    assert "--no-deps" in text and "onnxruntime==1.2.3" in command and "flatbuffers" in command
    assert text.count("--platform") == 4 and "manylinux2014_x86_64" in text


def fake_wheels(cache: Path, version: str) -> None:
    write(cache / f"onnxruntime-{version}-cp312-cp312-manylinux_2_27_x86_64.whl", "w")
    write(cache / f"onnxruntime-{version}-cp311-cp311-manylinux_2_27_x86_64.whl", "wrong python")
    write(cache / "flatbuffers-25.0.0-py2.py3-none-any.whl", "w")


def test_cached_wheels_are_used_without_network(tmp_path, monkeypatch):
    version = bk.pinned_version(REPO / "requirements.txt")
    fake_wheels(tmp_path / "cache", version)

    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the cache holds the wheels")

    monkeypatch.setattr(bk.subprocess, "run", no_network)
    _, out = build_real_table(tmp_path, "--wheels")
    names = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    assert names == [
        "flatbuffers-25.0.0-py2.py3-none-any.whl",
        f"onnxruntime-{version}-cp312-cp312-manylinux_2_27_x86_64.whl",
    ]


def test_missing_wheels_fail_with_fix(tmp_path, monkeypatch):
    class Failed:
        returncode = 1

    monkeypatch.setattr(bk.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(bk.BuildError, match="pip download"):
        bk.fetch_wheels(tmp_path / "cache", "1.2.3")


# --- the real kernels (once they exist) ----------------------------------------------------

REAL_KERNELS = sorted(p.stem for p in (REPO / "kernels").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.skipif(not REAL_KERNELS, reason="kernels/ holds no sources yet")
def test_real_kernels_build_self_contained(tmp_path):
    args = args_for(tmp_path, "--owner", "someone")
    folders = bk.build(args)
    assert sorted(folders) == REAL_KERNELS
    for name, folder in folders.items():
        nb = read_nb(folder / f"{name}.ipynb")
        nbformat.validate(nb)
        assert bk.lib_imports_left(nb) == []
    again = bk.build(bk.parse_args([*sys_args(tmp_path, "again"), "--owner", "someone"]))
    for name in folders:
        assert (folders[name] / f"{name}.ipynb").read_bytes() == (
            again[name] / f"{name}.ipynb"
        ).read_bytes()


def sys_args(tmp_path: Path, out: str) -> list[str]:
    return ["--out", str(tmp_path / out), "--wheel-cache", str(tmp_path / "cache")]


def test_all_library_modules_inline_together(tmp_path):
    """Every lib module in one notebook: no name clash, no __file__, no unsupported import."""
    names = []
    for path in sorted((REPO / "lib").glob("*.py")):
        tree = ast.parse(path.read_text())
        public = [
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")
        ]
        if public:
            names.append(f"from lib.{path.stem} import {public[0]}")
    kernel = write(tmp_path / "all.py", "# %%\n" + "\n".join(names) + "\n")
    nb = bk.build_notebook(kernel, REPO / "lib")
    assert bk.lib_imports_left(nb) == []
    assert len(names) >= 3


# --- execution in a real kernel, repository not importable -----------------------------------

SMOKE_KERNEL = """# %%
import json

import numpy as np

from lib.audio import load_audio, write_audio
from lib.config import Config
from lib.paths import find_competition, working_root

# %%
cfg = Config.from_env({"epochs": 3})
wave = np.sin(np.linspace(0, 2000, cfg.sample_rate)).astype("float32")
write_audio(working_root() / "tone.ogg", wave, cfg.sample_rate)
back = load_audio(working_root() / "tone.ogg", cfg.sample_rate)
info = {"epochs": cfg.epochs, "n_mels": cfg.n_mels, "samples": len(back)}
print(json.dumps({**info, "competition": str(find_competition())}))
"""


def kaggle_like(tmp_path: Path) -> tuple[Path, dict]:
    """input/competitions/birdclef-2023 + working/ outside the repository, and the kernel env."""
    (tmp_path / "input" / "competitions" / "birdclef-2023").mkdir(parents=True)
    (tmp_path / "working").mkdir()
    extra = {
        "KAGGLE_INPUT_DIR": str(tmp_path / "input"),
        "KAGGLE_WORKING_DIR": str(tmp_path / "working"),
        "BIRDCLEF_CONFIG": json.dumps({"n_mels": 64}),
        "PYTHONPATH": str(REPO),  # must be stripped by kernel_env
    }
    return tmp_path / "working", bk.kernel_env(os.environ, REPO, extra)


def test_built_notebook_runs_offline_without_the_repository(tmp_path):
    write(tmp_path / "kernels" / "smoke.py", SMOKE_KERNEL)
    table = {"smoke": bk.KernelSpec("smoke-test", "Smoke Test", False, False)}
    args = args_for(tmp_path, "--kernels-dir", str(tmp_path / "kernels"), "--owner", "me")
    folder = bk.build(args, kernels=table, datasets={})["smoke"]
    working, env = kaggle_like(tmp_path)
    assert "PYTHONPATH" not in env
    nb, seconds = bk.execute_notebook(read_nb(folder / "smoke.ipynb"), working, env, offline=True)
    result = json.loads(nb.cells[-1].outputs[-1]["text"])
    assert result["epochs"] == 3 and result["n_mels"] == 64 and result["samples"] == 32000
    assert result["competition"].endswith("competitions/birdclef-2023")
    assert len(nb.cells) == 2  # the guard cells are gone from the returned notebook


def test_fixture_notebook_executes(tmp_path):
    folder = build_demo(tmp_path) / "demo"
    working, env = kaggle_like(tmp_path)
    nb, _ = bk.execute_notebook(read_nb(folder / "demo.ipynb"), working, env, offline=False)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert '"triple_double": 12.0' in text and "shell-ok" in text and "{'scale': 3}" in text


PROBE = """import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("REACHED")
except OSError as err:
    print("BLOCKED", err)
"""


@pytest.mark.parametrize("mode", ["online", "offline", "offline-fallback"])
def test_offline_kernel_cannot_reach_a_listening_socket(tmp_path, monkeypatch, mode):
    """A server listening here is reachable online, and not from an offline kernel, whether
    offline comes from `unshare --net` or from the socket-blocking fallback."""
    if mode == "offline" and not bk.offline_prefix():
        pytest.skip("unshare --net is not available here")
    if mode == "offline-fallback":
        monkeypatch.setattr(bk, "offline_prefix", lambda: [])
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(PROBE.format(port=server.getsockname()[1]), id="p")]
        env = bk.kernel_env(os.environ, REPO, {})
        nb, _ = bk.execute_notebook(nb, tmp_path, env, offline=mode != "online")
    text = nb.cells[0].outputs[0]["text"]
    assert text.startswith("REACHED" if mode == "online" else "BLOCKED"), text


# --- rehearsal -----------------------------------------------------------------------------

FAKE_TRAIN = """# %%
import pandas as pd

from lib.config import Config
from lib.paths import find_competition, working_root

# %%
cfg = Config.from_env()
classes = sorted(pd.read_csv(find_competition() / "train_metadata.csv").primary_label.unique())
out = working_root()
for fold in range(cfg.n_folds):
    (out / f"fold{fold}.onnx").write_bytes(b"not a real model")
(out / "classes.txt").write_text("\\n".join(classes) + "\\n")
cfg.save(out / "config.json")
(out / "checkpoint.pt").write_bytes(b"not exported")
"""
FAKE_INFER = """# %%
import json

import pandas as pd
import soundfile as sf

from lib.paths import MODELS_DATASET_SLUG, find_competition, find_dataset, working_root

# %%
models = find_dataset(MODELS_DATASET_SLUG, required_file="*.onnx")
classes = (models / "classes.txt").read_text().split()
rows = []
for path in sorted((find_competition() / "test_soundscapes").glob("*.ogg")):
    rows += [f"{path.stem}_{end}" for end in range(5, int(sf.info(str(path)).duration) + 1, 5)]
sub = pd.DataFrame(0.5, index=range(len(rows)), columns=classes)
sub.insert(0, "row_id", rows)
sub.to_csv(working_root() / "submission.csv", index=False)
(working_root() / "timing.json").write_text(json.dumps({"windows": len(rows), "seconds": 0.01}))
"""
SMALL_SPEC = {
    "n_species": 3,
    "recordings_per_species": [2, 3],
    "recording_seconds": [5.0, 6.0],
    "n_soundscapes": 1,
    "soundscape_seconds": 20.0,
    "minor_species": 0,
    "with_pretrain_sources": False,
}


def test_rehearsal_end_to_end_with_stand_in_kernels(tmp_path, capsys):
    """The whole rehearsal loop on stand-in notebooks that follow the real kernels' contract."""
    write(tmp_path / "kernels" / "train.py", FAKE_TRAIN)
    write(tmp_path / "kernels" / "infer.py", FAKE_INFER)
    args = args_for(
        tmp_path, "--kernels-dir", str(tmp_path / "kernels"), "--workdir", str(tmp_path / "w"),
        "--owner", "me", "--rehearse-spec", json.dumps(SMALL_SPEC),
    )  # fmt: skip
    report = bk.rehearse(args, bk.build(args))
    work = tmp_path / "w"
    assert 0.0 <= report["score"] <= 1.0 and report["infer_s"] > 0
    models = sorted(p.name for p in (work / "input" / bk.MODELS_DATASET_SLUG).iterdir())
    assert models == ["classes.txt", "config.json"] + [f"fold{i}.onnx" for i in range(5)]
    assert (work / "solution.csv").is_file()
    assert not list((work / "input").rglob("solution.csv"))  # the truth is out of sight
    assert (work / "executed" / "infer.ipynb").is_file()
    assert (work / "working" / "infer" / "submission.csv").is_file()
    assert "padded cmAP" in capsys.readouterr().out


def test_rehearsal_failure_names_the_executed_copy(tmp_path):
    write(tmp_path / "kernels" / "train.py", FAKE_TRAIN)
    write(tmp_path / "kernels" / "infer.py", "# %%\nraise RuntimeError('inference broke')\n")
    args = args_for(
        tmp_path, "--kernels-dir", str(tmp_path / "kernels"), "--workdir", str(tmp_path / "w"),
        "--owner", "me", "--rehearse-spec", json.dumps(SMALL_SPEC),
    )  # fmt: skip
    with pytest.raises(bk.BuildError, match="notebook infer failed") as err:
        bk.rehearse(args, bk.build(args))
    executed = tmp_path / "w" / "executed" / "infer.ipynb"
    assert str(executed) in str(err.value)
    assert "inference broke" in executed.read_text()


def test_cell_seconds_reads_nbclient_timing():
    cell = nbformat.v4.new_code_cell("x = 1\ny = 2")
    cell.metadata["execution"] = {
        "iopub.execute_input": "2024-01-01T00:00:00.000000Z",
        "shell.execute_reply": "2024-01-01T00:00:02.500000Z",
    }
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("m"), cell])
    assert bk.cell_seconds(nb) == [(2.5, 1, "x = 1")]


@pytest.mark.skipif(not (REPO / "kernels" / "infer.py").is_file(), reason="no kernels/infer.py")
def test_real_inference_notebook_in_the_rehearsal_plumbing(tmp_path):
    """The second half of the rehearsal with the real kernels/infer.py: tiny untrained fold
    models exported by lib.export, the notebook run offline without the repository, then the
    submission checked and scored."""
    import pandas as pd

    from lib.config import Config
    from lib.export import export_run
    from lib.metric import padded_cmap
    from lib.model import build_model, save_checkpoint

    args = args_for(tmp_path, "--owner", "me", "--workdir", str(tmp_path / "w"))
    folders = bk.build(args)
    layout = bk.prepare_workdir(tmp_path / "w")
    competition = bk.make_synthetic(layout, SMALL_SPEC)
    classes = sorted(pd.read_csv(competition / "train_metadata.csv").primary_label.unique())
    config = Config().replace(backbone="mobilenetv3_small_050", pretrained=False, n_mels=64)
    for fold in range(2):
        model = build_model(config, len(classes), pretrained=False)
        save_checkpoint(tmp_path / "run" / f"fold{fold}" / "best.pt", model, config, classes)
    export_run(tmp_path / "run", bk.working_dir(layout, "train") / "models")
    bk.rehearse_inputs(layout, bk.working_dir(layout, "train"), tmp_path / "cache")
    working, seconds = bk.run_kernel(
        "infer", folders["infer"], layout, bk.REHEARSAL_INFER_CONFIG, args, offline=True
    )
    solution = pd.read_csv(layout["solution"])
    columns = bk.expected_columns(competition, solution)
    assert bk.check_submission(working / "submission.csv", columns, solution) == []
    score = padded_cmap(solution, pd.read_csv(working / "submission.csv"))
    assert 0.0 <= score <= 1.0
    assert bk.projected_minutes(seconds, len(solution), working) > 0


def test_rehearsal_needs_both_kernels(tmp_path):
    with pytest.raises(bk.BuildError, match="rehearsal needs kernels/"):
        bk.rehearse(args_for(tmp_path), {"train": tmp_path})


def test_rehearsal_refuses_to_wipe_a_foreign_folder(tmp_path):
    write(tmp_path / "precious" / "notes.txt", "keep me")
    with pytest.raises(bk.BuildError, match="refusing to delete"):
        bk.prepare_workdir(tmp_path / "precious")
    layout = bk.prepare_workdir(tmp_path / "fresh")
    write(layout["root"] / "old.txt", "from a previous rehearsal")
    bk.prepare_workdir(tmp_path / "fresh")  # its own folder: emptied and laid out again
    assert not (tmp_path / "fresh" / "old.txt").exists()


def test_check_submission_reports_each_problem(tmp_path):
    import pandas as pd

    solution = pd.DataFrame({"row_id": ["s_5", "s_10"], "a": [1, 0], "b": [0, 1]})
    columns = ["row_id", "a", "b"]
    good = tmp_path / "good.csv"
    pd.DataFrame({"row_id": ["s_5", "s_10"], "a": [0.9, 0.1], "b": [0.2, 0.8]}).to_csv(good)
    pd.read_csv(good, index_col=0).to_csv(good, index=False)
    assert bk.check_submission(good, columns, solution) == []
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"row_id": ["s_5", "s_5"], "b": [1.0, float("nan")], "a": ["x", 0]}).to_csv(
        bad, index=False
    )
    problems = " | ".join(bk.check_submission(bad, columns, solution))
    assert "columns differ" in problems and "duplicated" in problems
    assert "missing ['s_10']" in problems and "NaN" in problems
    assert "was not written" in bk.check_submission(tmp_path / "none.csv", columns, solution)[0]


def test_projected_minutes(tmp_path):
    assert bk.projected_minutes(60.0, 240, tmp_path) == pytest.approx(100.0)
    write(tmp_path / "timing.json", json.dumps({"windows": 240, "seconds": 24.0}))
    assert bk.projected_minutes(60.0, 240, tmp_path) == pytest.approx((36 + 2400) / 60)


def test_kernel_env_strips_the_repository():
    env = bk.kernel_env({"PYTHONPATH": f"{REPO}{os.pathsep}/other"}, REPO, {"A": "1"})
    assert env == {"PYTHONPATH": "/other", "A": "1"}


@pytest.mark.skipif(not (REPO / "kernels" / "train.py").is_file(), reason="no kernels/train.py")
def test_rehearsal_end_to_end_with_the_real_kernels(tmp_path, capsys):
    """CI's small rehearsal: the real training notebook (2 folds, 1 epoch) feeds the real
    inference notebook through the models dataset; the submission is checked and scored."""
    spec = {**SMALL_SPEC, "recordings_per_species": [4, 5], "soundscape_seconds": 15.0}
    config = {"epochs": 1, "n_folds": 2, "minor_class_threshold": 1, "n_mels": 32}
    args = args_for(
        tmp_path, "--workdir", str(tmp_path / "w"), "--owner", "me",
        "--rehearse-spec", json.dumps(spec), "--rehearse-config", json.dumps(config),
    )  # fmt: skip
    report = bk.rehearse(args, bk.build(args))
    work = tmp_path / "w"
    models = {p.name for p in (work / "input" / bk.MODELS_DATASET_SLUG).iterdir()}
    assert {"fold0.onnx", "fold1.onnx", "classes.json", "config.json"} <= models
    submission = work / "working" / "infer" / "submission.csv"
    assert submission.is_file() and 0.0 <= report["score"] <= 1.0
    assert (work / "working" / "train" / "runs" / "finetune" / "summary.json").is_file()
    assert "padded cmAP" in capsys.readouterr().out
