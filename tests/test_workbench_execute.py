"""workbench/execute.py: built notebooks run in a real kernel, without the repository, offline."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from workbench_support import REPO, build_demo, build_into, read_nb, write

import workbench.execute as execute
from workbench.metadata import KernelSpec

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
    return tmp_path / "working", execute.kernel_env(os.environ, REPO, extra)


def test_built_notebook_runs_offline_without_the_repository(tmp_path):
    write(tmp_path / "kernels" / "smoke.py", SMOKE_KERNEL)
    table = {"smoke": KernelSpec("smoke-test", "Smoke Test", False, False)}
    folders = build_into(
        tmp_path, kernels=table, datasets={}, kernels_dir=tmp_path / "kernels", owner="me"
    )
    working, env = kaggle_like(tmp_path)
    assert "PYTHONPATH" not in env
    nb, seconds = execute.execute_notebook(
        read_nb(folders["smoke"] / "smoke.ipynb"), working, env, offline=True
    )
    result = json.loads(nb.cells[-1].outputs[-1]["text"])
    assert result["epochs"] == 3 and result["n_mels"] == 64 and result["samples"] == 32000
    assert result["competition"].endswith("competitions/birdclef-2023")
    built = read_nb(folders["smoke"] / "smoke.ipynb")
    assert [c.id for c in nb.cells] == [c.id for c in built.cells]  # the guard cells are gone
    assert seconds > 0


def test_importable_repository_fails_the_guard(tmp_path):
    """The guard cell proves the notebook runs without the repository: with the repository on
    PYTHONPATH (lib and workbench importable) the run stops there."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran')", id="x")])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with pytest.raises(CellExecutionError, match="the repository is importable"):
        execute.execute_notebook(nb, tmp_path, env, offline=False)
    assert [c.source for c in nb.cells] == ["print('ran')"]


def test_fixture_notebook_executes(tmp_path):
    folder = build_demo(tmp_path) / "demo"
    working, env = kaggle_like(tmp_path)
    nb, _ = execute.execute_notebook(read_nb(folder / "demo.ipynb"), working, env, offline=False)
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
    if mode == "offline" and not execute.offline_prefix():
        pytest.skip("unshare --net is not available here")
    if mode == "offline-fallback":
        monkeypatch.setattr(execute, "offline_prefix", lambda: [])
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(PROBE.format(port=server.getsockname()[1]), id="p")]
        env = execute.kernel_env(os.environ, REPO, {})
        nb, _ = execute.execute_notebook(nb, tmp_path, env, offline=mode != "online")
    text = nb.cells[0].outputs[0]["text"]
    assert text.startswith("REACHED" if mode == "online" else "BLOCKED"), text


def test_cell_seconds_reads_nbclient_timing():
    cell = nbformat.v4.new_code_cell("x = 1\ny = 2")
    cell.metadata["execution"] = {
        "iopub.execute_input": "2024-01-01T00:00:00.000000Z",
        "shell.execute_reply": "2024-01-01T00:00:02.500000Z",
    }
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("m"), cell])
    assert execute.cell_seconds(nb) == [(2.5, 1, "x = 1")]


def test_kernel_env_strips_the_repository():
    env = execute.kernel_env({"PYTHONPATH": f"{REPO}{os.pathsep}/other"}, REPO, {"A": "1"})
    assert env == {"PYTHONPATH": "/other", "A": "1"}


def test_the_kernel_runs_the_python_it_is_given(tmp_path):
    """An overlay venv's python runs the kernel (nbclient stays here): the notebook sees that
    interpreter, and the onnxruntime this builder has is hidden from it."""
    from workbench.kaggle_image import overlay_venv

    python = overlay_venv(Path(os.sys.executable), tmp_path / "env")
    code = "import importlib.util, sys; print(sys.prefix, importlib.util.find_spec('onnxruntime'))"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code, id="p")])
    env = execute.kernel_env(os.environ, REPO, {})
    nb, _ = execute.execute_notebook(nb, tmp_path, env, offline=False, python=python)
    assert nb.cells[0].outputs[0]["text"].split() == [str(tmp_path / "env" / "venv"), "None"]


def test_thread_settings_default_to_one_unless_the_user_chose():
    threads, line = execute.thread_settings({})
    assert threads == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert "1 per kernel" in line
    threads, line = execute.thread_settings({"OMP_NUM_THREADS": "4"})
    assert threads == {} and "OMP_NUM_THREADS=4 (yours)" in line
