"""The build: every kernel source into build/<kernel>/ (notebook + kernel-metadata.json) and
every dataset folder's metadata (plus models and wheels when asked)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from workbench.errors import BuildError
from workbench.inline import build_notebook, notebook_text
from workbench.metadata import (
    KernelSpec,
    check_tables,
    kernel_metadata,
    write_datasets,
    write_json,
)
from workbench.owner import OWNER_PLACEHOLDER, owner_help, placeholder_fields, resolve_owner


def kernel_sources(kernels_dir: Path, kernels: dict) -> dict[str, Path]:
    """Kernel sources present in `kernels_dir`; a source with no table entry is an error."""
    if not kernels_dir.is_dir():
        raise BuildError(f"{kernels_dir}: kernels folder not found; pass --kernels-dir")
    found = {p.stem: p for p in sorted(kernels_dir.glob("*.py")) if not p.name.startswith("_")}
    unknown = sorted(set(found) - set(kernels))
    if unknown:
        raise BuildError(
            f"{kernels_dir}: no KERNELS entry for {unknown}. Fix: add one to the KERNELS table in "
            f"build_kernels.py (slug, title, gpu, internet, sources)."
        )
    return found


def write_kernel(
    name: str, source: Path, spec: KernelSpec, lib_dir: Path, out: Path, owner: str, datasets
) -> Path:
    """Write build/<name>/ (notebook + kernel-metadata.json) from scratch; return the folder."""
    nb = build_notebook(source, lib_dir)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / f"{name}.ipynb").write_text(notebook_text(nb), encoding="utf-8")
    write_json(folder / "kernel-metadata.json", kernel_metadata(name, spec, owner, datasets))
    return folder


def build(
    *,
    kernels: dict,
    datasets: dict,
    kernels_dir: Path,
    lib_dir: Path,
    out: Path,
    wheel_cache: Path,
    owner: str | None = None,
    models_from: Path | None = None,
    fetch_wheels: bool = False,
    environ=None,
    home: Path | None = None,
) -> dict[str, Path]:
    """Write every kernel folder and dataset folder; return {kernel name: folder}.

    `owner` (--owner) wins; else $KAGGLE_USERNAME or kaggle.json (from `environ`, `home`:
    the process's by default); else the placeholder is written and the fields needing the
    owner are listed with the fix.
    """
    check_tables(kernels, datasets)
    out, lib_dir = Path(out), Path(lib_dir)
    environ = os.environ if environ is None else environ
    owner, origin = resolve_owner(owner, environ, Path.home() if home is None else home)
    sources = kernel_sources(Path(kernels_dir), kernels)
    folders = {}
    for name, source in sources.items():
        start = time.perf_counter()
        folders[name] = write_kernel(
            name, source, kernels[name], lib_dir, out, owner or OWNER_PLACEHOLDER, datasets
        )
        seconds = time.perf_counter() - start
        print(f"kernel {name}: {folders[name] / (name + '.ipynb')} ({seconds:.2f} s)")
    missing = sorted(set(kernels) - set(sources))
    if missing:
        print(f"kernels not built (no source in {kernels_dir}): {', '.join(missing)}")
    write_datasets(
        out, owner or OWNER_PLACEHOLDER, datasets, models_from=models_from,
        fetch=fetch_wheels, wheel_cache=Path(wheel_cache),
    )  # fmt: skip
    if owner:
        print(f"owner: {owner} (from {origin})")
    else:
        print(owner_help(placeholder_fields(out, folders, datasets)))
    return folders
