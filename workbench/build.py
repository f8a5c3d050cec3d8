"""The build: every kernel source into build/<kernel>/ (notebook + kernel-metadata.json) and
every dataset folder's metadata (plus models and wheels when asked)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from lib.competitions import DEFAULT_COMPETITION
from workbench.errors import BuildError
from workbench.inline import build_notebook, notebook_text
from workbench.metadata import (
    KernelOptions,
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


# The notebooks' one competition setting, which the build writes (`--competition`).
COMPETITION_LINE = re.compile(r'^COMPETITION = "[^"\n]*"', re.MULTILINE)
# <out>/build.json: what a build was made for, read back by the round trip (push, submit).
BUILD_MANIFEST = "build.json"


def set_competition(nb, competition: str, source: Path) -> None:
    """Rewrite the notebook's settings line `COMPETITION = "..."` to `competition`; a kernel
    without exactly one such line cannot follow --competition and fails the build."""
    cells = [c for c in nb.cells if c.cell_type == "code" and COMPETITION_LINE.search(c.source)]
    found = sum(len(COMPETITION_LINE.findall(c.source)) for c in cells)
    if found != 1:
        raise BuildError(
            f'{source}: {found} settings lines `COMPETITION = "..."` (need exactly one) for '
            f"--competition {competition}. Fix: put one such line in the settings cell."
        )
    cells[0].source = COMPETITION_LINE.sub(f'COMPETITION = "{competition}"', cells[0].source)


def write_manifest(out: Path, competition: str) -> None:
    """<out>/build.json: the competition this build is for."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / BUILD_MANIFEST, {"competition": competition})


def build_competition(out: Path) -> str:
    """The competition the build in `out` was made for (its build.json). A build without one
    predates --competition, when every build was the default competition's."""
    path = Path(out) / BUILD_MANIFEST
    if not path.is_file():
        return DEFAULT_COMPETITION
    try:
        return str(json.loads(path.read_text())["competition"])
    except (ValueError, KeyError, TypeError) as err:
        raise BuildError(
            f"{path}: unreadable ({err!r}). Fix: rebuild with `python build_kernels.py "
            "--competition SLUG`."
        ) from err


def write_kernel(
    name: str, source: Path, spec: KernelSpec, lib_dir: Path, out: Path, owner: str, datasets,
    options: KernelOptions | None = None, competition: str | None = None,
) -> Path:  # fmt: skip
    """Write build/<name>/ (notebook + kernel-metadata.json) from scratch; return the folder.
    With `competition`, the notebook's COMPETITION setting is set to it (set_competition)."""
    nb = build_notebook(source, lib_dir)
    if competition is not None:
        set_competition(nb, competition, source)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / f"{name}.ipynb").write_text(notebook_text(nb), encoding="utf-8")
    write_json(
        folder / "kernel-metadata.json", kernel_metadata(name, spec, owner, datasets, options)
    )
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
    options: KernelOptions | None = None,
    competition: str | None = None,
) -> dict[str, Path]:
    """Write every kernel folder and dataset folder; return {kernel name: folder}.

    `competition` (a lib.competitions slug) is written into each notebook's COMPETITION
    setting and into <out>/build.json; None leaves the kernels as written (fixtures).

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
            name, source, kernels[name], lib_dir, out, owner or OWNER_PLACEHOLDER, datasets,
            options, competition,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        print(f"kernel {name}: {folders[name] / (name + '.ipynb')} ({seconds:.2f} s)")
    if competition is not None:
        write_manifest(out, competition)
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
