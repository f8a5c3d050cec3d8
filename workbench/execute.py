"""Running a built notebook like Kaggle does: a real Jupyter kernel in its own working folder,
the repository not importable, and (offline) no network.

Offline uses `unshare --net` where it works (a network namespace with no interfaces: exactly
Kaggle's internet-off), else a sitecustomize socket blocker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

LIB_GUARD = """# rehearsal guard, added by workbench/execute.py (not part of the built notebook)
import importlib.util as _guard_util

for _guard_name in ("lib", "workbench"):
    assert _guard_util.find_spec(_guard_name) is None, "the repository is importable here"
del _guard_util, _guard_name"""
NET_GUARD = """# rehearsal guard, added by workbench/execute.py (not part of the built notebook)
import socket as _guard_socket

try:
    _guard_socket.create_connection(("1.1.1.1", 443), timeout=3).close()
except OSError:
    pass
else:
    raise AssertionError("the network is reachable from the offline kernel")
del _guard_socket"""
SOCKET_BLOCKER = """# Made by workbench/execute.py: no internet (unshare --net was unavailable).
import socket

def _refuse(self, address, *args, **kwargs):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(101, "network disabled by the offline rehearsal kernel")
    return _connect(self, address, *args, **kwargs)

def _refuse_ex(self, address, *args, **kwargs):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        return 101
    return _connect_ex(self, address, *args, **kwargs)

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
socket.socket.connect, socket.socket.connect_ex = _refuse, _refuse_ex
"""


def offline_prefix() -> list[str]:
    """`unshare --net --` when it works here (root or user namespaces), else [] (fallback).

    A new network namespace has no interfaces at all: nothing can reach the internet, which is
    exactly Kaggle's internet-off. The kernel then talks to nbclient over unix sockets (ipc).
    """
    unshare = shutil.which("unshare")
    if not unshare:
        return []
    probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, check=False)
    return [unshare, "--net", "--"] if probe.returncode == 0 else []


def kernel_env(base, repo: Path, extra: dict) -> dict:
    """The kernel's environment: `base` + `extra`, with the repository removed from PYTHONPATH."""
    env = {**base, **extra}
    entries = [e for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
    kept = [e for e in entries if Path(e).resolve() != repo.resolve()]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _kernel_manager(tmp: Path, prefix: list[str], python: Path):
    """A kernel manager running `python`'s ipykernel, behind `prefix`, over ipc sockets."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = tmp / "kernels" / "bk-rehearsal"
    spec_dir.mkdir(parents=True)
    argv = [*prefix, str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "rehearsal", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    return AsyncKernelManager(
        kernel_name="bk-rehearsal", kernel_spec_manager=specs, transport="ipc", ip=str(tmp / "k")
    )


def execute_notebook(
    nb, cwd: Path, env: dict, *, offline: bool, timeout: int = 3600, python: Path | None = None
):
    """Run `nb` in a fresh Jupyter kernel of `python` (default: this one; it needs ipykernel)
    started in `cwd` with `env`; return (nb, seconds). nbclient itself stays in this process.

    Guard cells first prove the repository is not importable (and, offline, that the network is
    unreachable); they are removed from the returned notebook. Offline uses `unshare --net`
    where possible, else a sitecustomize socket blocker (prefix `[]`, PYTHONPATH extended).
    Raises nbclient's CellExecutionError (partly executed `nb` kept) if a cell fails.
    """
    from nbclient import NotebookClient

    guards = [LIB_GUARD, NET_GUARD] if offline else [LIB_GUARD]
    nb.cells[:0] = [nbformat.v4.new_code_cell(g, id=f"guard-{i}") for i, g in enumerate(guards)]
    with tempfile.TemporaryDirectory(prefix="bk-") as tmp_name:  # short: unix socket paths
        tmp = Path(tmp_name)
        prefix = offline_prefix() if offline else []
        if offline and not prefix:
            (tmp / "site").mkdir()
            (tmp / "site" / "sitecustomize.py").write_text(SOCKET_BLOCKER)
            path = [str(tmp / "site"), *filter(None, [env.get("PYTHONPATH")])]
            env = {**env, "PYTHONPATH": os.pathsep.join(path)}
        manager = _kernel_manager(tmp, prefix, Path(python or sys.executable))
        client = NotebookClient(
            nb, km=manager, timeout=timeout, record_timing=True, coalesce_streams=True,
            resources={"metadata": {"path": str(cwd)}},
        )  # fmt: skip  # coalesce: a saved notebook keeps a progress bar's last state, not each
        start = time.perf_counter()
        try:
            client.execute(env=env, cwd=str(cwd), cleanup_kc=True)  # our km: shut it down
        finally:
            del nb.cells[: len(guards)]
    return nb, time.perf_counter() - start


def thread_settings(environ) -> tuple[dict, str]:
    """The kernels' thread variables and a line saying which: one thread each (OMP, MKL,
    OpenBLAS) unless the user set OMP_NUM_THREADS. A rehearsal is a smoke run; on a busy
    machine spinning threads made epochs 10-30x slower."""
    if environ.get("OMP_NUM_THREADS"):
        return {}, f"threads: OMP_NUM_THREADS={environ['OMP_NUM_THREADS']} (yours) for each kernel"
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    line = "threads: 1 per kernel (OMP/MKL/OPENBLAS_NUM_THREADS=1; set OMP_NUM_THREADS to change)"
    return dict.fromkeys(names, "1"), line


def _cell_label(cell) -> str:
    """A cell's jupytext title (`# %% title`), else its first line of its own code."""
    if cell.get("metadata", {}).get("title"):
        return str(cell.metadata["title"])
    lines = [line for line in cell.source.splitlines() if line.strip()]
    own = [line for line in lines if not line.startswith(("#", "from __future__", '"""'))]
    return (own or lines or [""])[0][:60]


def cell_seconds(nb) -> list[tuple[float, int, str]]:
    """(seconds, cell index, first line) per executed code cell, slowest first (record_timing)."""
    from datetime import datetime

    timed = []
    for index, cell in enumerate(nb.cells):
        execution = cell.get("metadata", {}).get("execution", {})
        start, end = execution.get("iopub.execute_input"), execution.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
            timed.append((seconds, index, _cell_label(cell)))
    return sorted(timed, reverse=True)
