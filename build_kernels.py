"""Turn the jupytext sources in `kernels/` into self-contained Kaggle notebooks, datasets, and a
local rehearsal of the whole Kaggle loop.

Kaggle runs one notebook file: it cannot import this repository. So every code cell that imports
from `lib` is replaced by the source of the library modules it needs (transitively, in dependency
order, each module once per notebook), and the build fails if any `lib` import survives.

    python build_kernels.py                      # build/<kernel>/ and build/<dataset>/ metadata
    python build_kernels.py --owner me --wheels  # also fetch onnxruntime wheels (cached)
    python build_kernels.py --models-from work/rehearsal/working/train   # fill the models dataset
    python build_kernels.py --rehearse           # build, then run train + infer locally, score

Per-kernel and per-dataset settings live in the KERNELS and DATASETS tables below.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:  # `lib` must import when this file is run from elsewhere
    sys.path.insert(0, str(REPO))

from lib.inlined import lib_cell_header  # noqa: E402
from lib.paths import (  # noqa: E402  (needs REPO on sys.path when imported from elsewhere)
    COMPETITION_SLUG,
    MODELS_DATASET_SLUG,
    WHEELS_DATASET_SLUG,
)

OWNER_PLACEHOLDER = "YOUR_KAGGLE_USERNAME"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
MODEL_PATTERNS = ("*.onnx", "*.json", "classes*.txt", "classes*.csv")
METADATA_FILES = {"dataset-metadata.json", "kernel-metadata.json"}
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)
KAGGLE_PYTHON = "3.12"


class BuildError(RuntimeError):
    """A build problem the user must fix; the message names the file and the fix."""


@dataclass(frozen=True)
class KernelSpec:
    """How one kernel source becomes a Kaggle notebook (see kernel-metadata.json)."""

    slug: str
    title: str  # should slugify to `slug`, or `kaggle kernels push` warns
    enable_gpu: bool
    enable_internet: bool
    datasets: tuple[str, ...] = ()  # keys of DATASETS (the owner's datasets it reads)
    competitions: tuple[str, ...] = (COMPETITION_SLUG,)
    kernels: tuple[str, ...] = ()  # slugs of the owner's kernels whose output it reads
    public_datasets: tuple[str, ...] = ()  # other owners' datasets, "owner/slug"


@dataclass(frozen=True)
class DatasetSpec:
    slug: str  # 6-50 characters
    title: str  # 6-50 characters


# The one table of per-kernel settings. A code-competition submission must run offline.
KERNELS: dict[str, KernelSpec] = {
    # The recipe pre-trains on the 2020-2022 competitions and Xeno-canto extended (optional in
    # the notebook; attaching past competitions needs their rules accepted on Kaggle).
    "train": KernelSpec(
        "birdclef-2023-sed-train",
        "BirdCLEF 2023 SED Train",
        enable_gpu=True,
        enable_internet=True,
        competitions=(COMPETITION_SLUG, "birdsong-recognition", "birdclef-2021", "birdclef-2022"),
        public_datasets=(
            "rohanrao/xeno-canto-bird-recordings-extended-a-m",
            "rohanrao/xeno-canto-bird-recordings-extended-n-z",
        ),
    ),
    "infer": KernelSpec(
        "birdclef-2023-sed-infer",
        "BirdCLEF 2023 SED Infer",
        enable_gpu=False,
        enable_internet=False,
        datasets=("models", "wheels"),
    ),
}
DATASETS: dict[str, DatasetSpec] = {
    "models": DatasetSpec(MODELS_DATASET_SLUG, "BirdCLEF 2023 SED Models"),
    "wheels": DatasetSpec(WHEELS_DATASET_SLUG, "BirdCLEF 2023 onnxruntime Wheels"),
}


# ---------------------------------------------------------------------------------------------
# Library modules: parse, strip lib imports / __main__ blocks, neutralise cell markers
# ---------------------------------------------------------------------------------------------

# What jupytext's py:percent reader takes for a cell start (jupytext/cell_reader.py).
_MARKER_RE = re.compile(r"^(\s*)#(\s*(?:%%|<codecell>|In\[[0-9 ]*\]:?))")


@dataclass(frozen=True)
class LibModule:
    name: str  # "config" for lib/config.py
    path: Path
    deps: tuple[str, ...]  # lib modules it imports, in source order
    futures: tuple[str, ...]  # `from __future__` names, hoisted to the top of the cell
    code: str  # the source with lib imports, futures and __main__ blocks removed
    bindings: dict  # top-level name -> what it binds (for the name-clash check)


def _is_lib_import(node: ast.AST, package: str) -> bool:
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return node.level > 0 or module == package or module.startswith(package + ".")
    if isinstance(node, ast.Import):
        return any(a.name == package or a.name.startswith(package + ".") for a in node.names)
    return False


def _lib_import_target(node: ast.AST, package: str, where: str) -> str:
    """The module name `x` of `from lib.x import a, b`; any other form is an error."""
    ok = (
        isinstance(node, ast.ImportFrom)
        and node.level == 0
        and (node.module or "").count(".") == 1
        and all(alias.name != "*" for alias in node.names)
    )
    if not ok:
        raise BuildError(
            f"{where}:{node.lineno}: unsupported lib import `{ast.unparse(node)}`. "
            f"Fix: write it as `from {package}.<module> import name, ...` at the top level."
        )
    return node.module.split(".", 1)[1]


def _alias_lines(node: ast.ImportFrom) -> list[str]:
    """`from lib.x import a as b` keeps working inlined as `b = a`."""
    return [f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name]


def _is_main_block(node: ast.AST) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
        return False
    parts = [node.test.left, *node.test.comparators]
    names = [p for p in parts if isinstance(p, ast.Name) and p.id == "__name__"]
    mains = [p for p in parts if isinstance(p, ast.Constant) and p.value == "__main__"]
    return len(parts) == 2 and bool(names) and bool(mains)


def _check_nested_lib_imports(tree: ast.Module, package: str, where: str) -> None:
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if _is_lib_import(node, package) and id(node) not in top:
            raise BuildError(
                f"{where}:{node.lineno}: `{ast.unparse(node)}` is not at the top level, so it "
                f"cannot be inlined. Fix: move it to the top of the file or cell."
            )


def neutralise_markers(code: str, where: str) -> str:
    """Rewrite comments that jupytext would read as cell starts (`# %%` -> `## %%`).

    The built notebook then converts to py:percent and back with the same cells. A marker inside
    a string literal cannot be rewritten without changing the program: that is an error.
    """
    lines = code.splitlines(keepends=True)
    if not any(_MARKER_RE.match(line) for line in lines):
        return code
    comments = {
        tok.start
        for tok in tokenize.generate_tokens(io.StringIO(code).readline)
        if tok.type == tokenize.COMMENT
    }
    for index, line in enumerate(lines):
        match = _MARKER_RE.match(line)
        if not match:
            continue
        if (index + 1, len(match.group(1))) not in comments:
            raise BuildError(
                f"{where}:{index + 1}: a jupytext cell marker ({line.strip()!r}) inside a string "
                f"would split the notebook cell. Fix: change that text (e.g. '#%' -> '# %')."
            )
        lines[index] = match.group(1) + "##" + line[match.end(1) + 1 :]
    return "".join(lines)


def _binding(node: ast.stmt) -> dict:
    """Top-level names a statement binds, with a value that is equal only for identical code."""
    if isinstance(node, ast.Import):
        return {(a.asname or a.name.split(".")[0]): f"import {a.name}" for a in node.names}
    if isinstance(node, ast.ImportFrom):
        return {(a.asname or a.name): f"from {node.module} import {a.name}" for a in node.names}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name: ast.dump(node)}
    targets = node.targets if isinstance(node, ast.Assign) else []
    if isinstance(node, ast.AnnAssign):
        targets = [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return {name: ast.dump(node) for name in names}


def _removed_spans(tree: ast.Module, package: str, where: str):
    """(first line, last line, replacement lines) of statements the inliner drops."""
    spans, deps, futures = [], [], []
    for node in tree.body:
        if _is_lib_import(node, package):
            deps.append(_lib_import_target(node, package, where))
            spans.append((node.lineno, node.end_lineno, _alias_lines(node)))
        elif isinstance(node, ast.ImportFrom) and node.module == "__future__":
            futures.extend(a.name for a in node.names)
            spans.append((node.lineno, node.end_lineno, []))
        elif _is_main_block(node):
            spans.append((node.lineno, node.end_lineno, []))
    return spans, deps, futures


def _drop_spans(source: str, spans) -> str:
    lines = source.splitlines()
    for first, last, replacement in sorted(spans, reverse=True):
        lines[first - 1 : last] = replacement
    return "\n".join(lines)


def _tidy(code: str) -> str:
    """Strip outer blank lines and squeeze runs of blank lines left by removed statements."""
    return re.sub(r"\n{4,}", "\n\n\n", code.strip("\n"))


def load_module(lib_dir: Path, name: str) -> LibModule:
    """Parse `lib_dir/<name>.py` and prepare its code for inlining."""
    path = lib_dir / f"{name}.py"
    if not path.is_file():
        raise BuildError(f"{path}: no such library module (imported as {lib_dir.name}.{name})")
    source = path.read_text(encoding="utf-8")
    where = str(path)
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as err:
        raise BuildError(f"{where}:{err.lineno}: syntax error: {err.msg}") from err
    _check_nested_lib_imports(tree, lib_dir.name, where)
    spans, deps, futures = _removed_spans(tree, lib_dir.name, where)
    code = _drop_spans(source, spans)
    kept = ast.parse(code)
    if any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(kept)):
        raise BuildError(
            f"{where}: uses __file__, which a notebook does not have. Fix: pass paths."
        )
    bindings: dict = {}
    for node in kept.body:
        bindings.update(_binding(node))
    code = neutralise_markers(_tidy(code), where)
    return LibModule(name, path, tuple(dict.fromkeys(deps)), tuple(futures), code, bindings)


def dependency_order(lib_dir: Path, roots, cache: dict) -> list[str]:
    """Modules needed by `roots`, each after its dependencies; a cycle is an error."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = " -> ".join((*chain, name))
            raise BuildError(f"import cycle in {lib_dir}: {cycle}. Fix: break the cycle.")
        state[name] = "active"
        if name not in cache:
            cache[name] = load_module(lib_dir, name)
        for dep in cache[name].deps:
            visit(dep, (*chain, name))
        state[name] = "done"
        order.append(name)

    for root in roots:
        visit(root, ())
    return order


def check_name_clashes(modules: list[LibModule]) -> None:
    """Inlined modules share one namespace: a name bound differently by two modules would let
    the later silently replace the earlier, so it fails the build instead."""
    seen: dict[str, tuple[str, str]] = {}
    for module in modules:
        for name, value in module.bindings.items():
            if name.startswith("__") and name.endswith("__"):
                continue
            other = seen.get(name)
            if other and other[1] != value:
                raise BuildError(
                    f"{module.path}: top-level name {name!r} is also defined, differently, in "
                    f"{other[0]}; inlined into one notebook the later would replace the earlier. "
                    f"Fix: rename one of them (e.g. make it private with a module prefix)."
                )
            seen.setdefault(name, (str(module.path), value))


# ---------------------------------------------------------------------------------------------
# Kernel cells: find lib imports, splice library code in, verify nothing of lib survives
# ---------------------------------------------------------------------------------------------

_LIB_HINT_RE = r"(?m)(\bfrom\s+{0}\b|\bimport\s+.*\b{0}\b)"  # a cheap pre-filter


def _python_source(cell_source: str) -> str | None:
    """The cell as plain Python (IPython magics translated), or None if it is not parseable."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        code = TransformerManager().transform_cell(cell_source)
        ast.parse(code)
    except SyntaxError:
        return None
    return code


def _cell_lib_imports(source: str, package: str, where: str):
    """(tree nodes of top-level lib imports, futures nodes) of a kernel cell, line-checked."""
    code = _python_source(source)
    if code is None:
        raise BuildError(f"{where}: cell imports {package} but is not valid Python; fix the cell.")
    if len(code.splitlines()) != len(source.splitlines()):
        raise BuildError(f"{where}: move the {package} imports to a cell without cell magics.")
    tree = ast.parse(code)
    _check_nested_lib_imports(tree, package, where)
    imports = [n for n in tree.body if _is_lib_import(n, package)]
    futures = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    lines = [range(n.lineno, n.end_lineno + 1) for n in imports]
    for node in tree.body:
        if node not in imports and any(node.lineno in span for span in lines):
            raise BuildError(f"{where}:{node.lineno}: put the {package} import on its own line.")
    return imports, futures


def inline_cell(source: str, lib_dir: Path, done: list[str], cache: dict, where: str) -> str:
    """The cell with its lib imports replaced by the library code not yet in the notebook.

    `done` lists modules already inlined by earlier cells and is extended in place.
    """
    package = lib_dir.name
    if not re.search(_LIB_HINT_RE.format(re.escape(package)), source):
        return source
    imports, future_nodes = _cell_lib_imports(source, package, where)
    if not imports:
        return source
    roots = [_lib_import_target(node, package, where) for node in imports]
    needed = [m for m in dependency_order(lib_dir, roots, cache) if m not in done]
    modules = [cache[m] for m in needed]
    check_name_clashes([cache[m] for m in done] + modules)
    done.extend(needed)
    futures = [a.name for n in future_nodes for a in n.names]
    futures += [f for m in modules for f in m.futures]
    spans = [(n.lineno, n.end_lineno, []) for n in [*imports, *future_nodes]]
    rest = _tidy(_drop_spans(source, spans))
    aliases = [line for node in imports for line in _alias_lines(node)]
    parts = [f"from __future__ import {', '.join(dict.fromkeys(futures))}"] if futures else []
    for module in modules:
        header = lib_cell_header(package, module.name)
        parts.append(f"{header}\n{module.code}")
    parts.extend(part for part in ("\n".join(aliases), rest) if part)
    return "\n\n\n".join(parts)


def lib_imports_left(nb, package: str = "lib") -> list[str]:
    """Descriptions of every `lib` import still in a notebook's code cells (should be none).

    Parseable cells are checked with `ast` (docstrings mentioning lib do not count); cell-magic
    cells (their body is a string to `ast`) and unparseable cells are checked by pattern.
    """
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code = _python_source(cell.source)
        if code is None or cell.source.lstrip().startswith("%%"):  # cell magic: code is a string
            pattern = _LIB_HINT_RE.format(re.escape(package))
            found += [
                f"cell {index}: {m.group(0).strip()}" for m in re.finditer(pattern, cell.source)
            ]
            continue
        for node in ast.walk(ast.parse(code)):
            if _is_lib_import(node, package):
                found.append(f"cell {index} line {node.lineno}: {ast.unparse(node)}")
    return found


def cell_id(index: int, cell) -> str:
    """Stable id from position and content: a rebuild of unchanged sources is byte-identical."""
    digest = hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
    return f"c{index:03d}-{digest[:10]}"


def build_notebook(source_path: Path, lib_dir: Path):
    """Read a py:percent kernel source and return the self-contained, validated notebook."""
    nb = jupytext.reads(source_path.read_text(encoding="utf-8"), fmt="py:percent")
    done: list[str] = []
    cache: dict = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            where = f"{source_path} (cell {index})"
            cell.source = inline_cell(cell.source, lib_dir, done, cache, where)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for index, cell in enumerate(nb.cells):
        cell.id = cell_id(index, cell)
    left = lib_imports_left(nb, lib_dir.name)
    if left:
        raise BuildError(f"{source_path}: lib imports survived inlining: {left}")
    nbformat.validate(nb)
    return nb


def notebook_text(nb) -> str:
    text = jupytext.writes(nb, fmt="ipynb")
    return text if text.endswith("\n") else text + "\n"


# ---------------------------------------------------------------------------------------------
# Owner, metadata, folders
# ---------------------------------------------------------------------------------------------


def kaggle_json_paths(environ, home: Path) -> list[Path]:
    """Where the kaggle 2.2.5 client looks for kaggle.json, in its order."""
    if environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"]
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [home / ".kaggle" / "kaggle.json", xdg / "kaggle" / "kaggle.json"]


def resolve_owner(cli_owner, environ, home: Path) -> tuple[str | None, str]:
    """(owner, where it came from): --owner, then $KAGGLE_USERNAME, then kaggle.json's username.

    Only the username is read from kaggle.json; the key is never touched.
    """
    if cli_owner:
        return cli_owner, "--owner"
    if environ.get("KAGGLE_USERNAME"):
        return environ["KAGGLE_USERNAME"], "$KAGGLE_USERNAME"
    for path in kaggle_json_paths(environ, home):
        if path.is_file():
            try:
                username = json.loads(path.read_text()).get("username")
            except (OSError, ValueError, AttributeError) as err:
                raise BuildError(f"{path}: cannot read the username ({err}); fix the file") from err
            if username:
                return username, str(path)
    return None, "nowhere"


def kernel_metadata(name: str, spec: KernelSpec, owner: str) -> dict:
    """kernel-metadata.json for `kaggle kernels push -p build/<name>`."""
    return {
        "id": f"{owner}/{spec.slug}",
        "title": spec.title,
        "code_file": f"{name}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": spec.enable_gpu,
        "enable_tpu": False,
        "enable_internet": spec.enable_internet,
        "dataset_sources": [f"{owner}/{DATASETS[key].slug}" for key in spec.datasets]
        + list(spec.public_datasets),
        "competition_sources": list(spec.competitions),
        "kernel_sources": [f"{owner}/{slug}" for slug in spec.kernels],
        "model_sources": [],
    }


def dataset_metadata(spec: DatasetSpec, owner: str) -> dict:
    """dataset-metadata.json for `kaggle datasets create -p build/<dataset>`."""
    return {"id": f"{owner}/{spec.slug}", "title": spec.title, "licenses": [{"name": "CC0-1.0"}]}


def check_tables(kernels: dict, datasets: dict) -> None:
    """Kaggle's own limits, checked before anything is written."""
    for key, spec in datasets.items():
        for field, value in (("slug", spec.slug), ("title", spec.title)):
            if not 6 <= len(value) <= 50:
                raise BuildError(f"DATASETS[{key!r}].{field} must be 6-50 characters: {value!r}")
    for name, spec in kernels.items():
        if len(spec.slug) < 5 or len(spec.title) < 5:
            raise BuildError(f"KERNELS[{name!r}]: slug and title need at least 5 characters")
        unknown = [d for d in spec.datasets if d not in datasets]
        if unknown:
            raise BuildError(f"KERNELS[{name!r}] reads unknown datasets {unknown}")


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


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


def write_kernel(name: str, source: Path, spec: KernelSpec, lib_dir: Path, out: Path, owner: str):
    """Write build/<name>/ (notebook + kernel-metadata.json) from scratch; return the folder."""
    nb = build_notebook(source, lib_dir)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / f"{name}.ipynb").write_text(notebook_text(nb), encoding="utf-8")
    write_json(folder / "kernel-metadata.json", kernel_metadata(name, spec, owner))
    return folder


def export_folder(source: Path) -> Path:
    """The folder of a training run's output that holds the exported *.onnx files.

    `source` itself if it holds them, else its one sub-folder that does (e.g. working/models/);
    several candidates are ambiguous and fail, as does none.
    """
    if not source.is_dir():
        raise BuildError(f"--models-from {source}: folder not found; pass a training run's output")
    folders = sorted({path.parent for path in source.rglob("*.onnx")})
    if source in folders:
        return source
    if len(folders) == 1:
        return folders[0]
    listing = ", ".join(str(f) for f in folders) or "none"
    raise BuildError(
        f"--models-from {source}: need one folder of exported *.onnx files, found: {listing}. "
        f"Fix: point it at the folder where the training notebook exported its fold models."
    )


def copy_models(source: Path, dest: Path) -> list[Path]:
    """Copy a training run's export (ONNX, JSON, class lists) flat into the models dataset.

    Flat, because notebooks find the dataset by a file at its top (e.g. classes.json) and
    `kaggle datasets create` skips sub-folders. `dest` is emptied first (but for its metadata)
    so no stale fold survives.
    """
    folder = export_folder(source)
    files = sorted({p for pattern in MODEL_PATTERNS for p in folder.glob(pattern)})
    files = [p for p in files if p.is_file() and p.name not in METADATA_FILES]
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.name not in METADATA_FILES:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for path in files:
        shutil.copy2(path, dest / path.name)
    return [dest / path.name for path in files]


# ---------------------------------------------------------------------------------------------
# onnxruntime wheels for Kaggle's image (fetched once into a cache)
# ---------------------------------------------------------------------------------------------


def pinned_version(requirements: Path, package: str = "onnxruntime") -> str:
    """The `package==X` pin in requirements.txt: Kaggle must run what was tested here."""
    pattern = re.compile(rf"^\s*{re.escape(package)}\s*==\s*([^\s;#]+)", re.IGNORECASE | re.M)
    match = pattern.search(requirements.read_text()) if requirements.is_file() else None
    if not match:
        raise BuildError(f"{requirements}: no `{package}==<version>` pin. Fix: add one.")
    return match.group(1)


def default_wheel_cache(environ) -> Path:
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "birdclef-kit" / "wheels"


def cached_wheels(cache: Path, version: str) -> list[Path]:
    """The cached wheels for onnxruntime==version and flatbuffers, or [] if either is missing."""
    ort = sorted(cache.glob(f"onnxruntime-{version}-cp{KAGGLE_PYTHON.replace('.', '')}-*.whl"))
    flat = sorted(cache.glob("flatbuffers-*.whl"))
    return [*ort, *flat] if ort and flat else []


def pip_download_command(cache: Path, version: str) -> list[str]:
    platforms = [arg for plat in WHEEL_PLATFORMS for arg in ("--platform", plat)]
    return [
        sys.executable, "-m", "pip", "download", "--only-binary=:all:",
        "--python-version", KAGGLE_PYTHON, "--implementation", "cp", *platforms,
        "--no-deps", "--dest", str(cache), f"onnxruntime=={version}", "flatbuffers",
    ]  # fmt: skip


def fetch_wheels(cache: Path, version: str) -> list[Path]:
    """Download the wheels into `cache` unless already there (network needed only once)."""
    wheels = cached_wheels(cache, version)
    if wheels:
        return wheels
    cache.mkdir(parents=True, exist_ok=True)
    command = pip_download_command(cache, version)
    print("fetching wheels:", " ".join(command))
    result = subprocess.run(command, check=False)
    wheels = cached_wheels(cache, version)
    if result.returncode != 0 or not wheels:
        raise BuildError(
            f"pip download of onnxruntime=={version} for cp{KAGGLE_PYTHON} failed (exit "
            f"{result.returncode}). Fix: check the network, or put the wheels in {cache}."
        )
    return wheels


def copy_wheels(wheels: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)


# ---------------------------------------------------------------------------------------------
# Running notebooks: a real Jupyter kernel, the repository not importable, optionally offline
# ---------------------------------------------------------------------------------------------

LIB_GUARD = """# rehearsal guard, added by build_kernels.py (not part of the built notebook)
import importlib.util as _guard_util

assert _guard_util.find_spec("lib") is None, "the repository is importable in this kernel"
del _guard_util"""
NET_GUARD = """# rehearsal guard, added by build_kernels.py (not part of the built notebook)
import socket as _guard_socket

try:
    _guard_socket.create_connection(("1.1.1.1", 443), timeout=3).close()
except OSError:
    pass
else:
    raise AssertionError("the network is reachable from the offline kernel")
del _guard_socket"""
SOCKET_BLOCKER = """# Made by build_kernels.py: no internet here (unshare --net was unavailable).
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


def _kernel_manager(tmp: Path, prefix: list[str]):
    """A kernel manager running this Python's ipykernel, behind `prefix`, over ipc sockets."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = tmp / "kernels" / "bk-rehearsal"
    spec_dir.mkdir(parents=True)
    argv = [*prefix, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "rehearsal", "language": "python"}
    write_json(spec_dir / "kernel.json", spec)
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    return AsyncKernelManager(
        kernel_name="bk-rehearsal", kernel_spec_manager=specs, transport="ipc", ip=str(tmp / "k")
    )


def execute_notebook(nb, cwd: Path, env: dict, *, offline: bool, timeout: int = 3600):
    """Run `nb` in a fresh Jupyter kernel started in `cwd` with `env`; return (nb, seconds).

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
        client = NotebookClient(
            nb, km=_kernel_manager(tmp, prefix), timeout=timeout, record_timing=True,
            resources={"metadata": {"path": str(cwd)}},
        )  # fmt: skip
        start = time.perf_counter()
        try:
            client.execute(env=env, cwd=str(cwd), cleanup_kc=True)  # our km: shut it down
        finally:
            del nb.cells[: len(guards)]
    return nb, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Rehearsal: synthetic competition -> train notebook -> models dataset -> offline inference
# ---------------------------------------------------------------------------------------------

# Small enough for ~15 minutes on 2 CPU cores; the training notebook reads it via Config.from_env.
# A tiny CNN from scratch needs a few hundred optimiser steps to learn the synthetic calls
# (measured: 15 epochs -> padded cmAP 0.66 on the soundscapes, 100 epochs -> 0.92, one fold).
REHEARSAL_TRAIN_CONFIG = {
    "backbone": "mobilenetv3_small_050",
    "pretrained": False,
    "n_mels": 64,
    "n_folds": 5,
    "epochs": 100,
    "batch_size": 8,
    "lr": 3e-3,
    "dropout": 0.1,
    "freq_mask_max": 6,  # SpecAugment masks scaled to 64 mels
    "time_mask_max": 20,
    "background_noise_p": 0.0,  # the synthetic competition ships no noise recordings
    "num_workers": 0,
    # Measured on the soundscapes, same 5 folds: frame_max 0.923, mean 0.899, clip 0.870.
    "window_output": "frame_max",
}
# Four 60 s soundscapes (48 scored windows); no pre-training sources, so the training notebook
# goes straight to the 5-fold fine-tune (pre-training is covered by tests/test_train.py).
REHEARSAL_SPEC = {"n_soundscapes": 4, "with_pretrain_sources": False}
REHEARSAL_INFER_CONFIG = {"infer_processes": 2, "infer_threads": 1}
HIDDEN_TEST_WINDOWS = 24_000  # ~200 soundscapes x 120 windows in the scoring run
KAGGLE_LIMIT_MINUTES = 120
_REHEARSAL_MARK = ".birdclef-rehearsal"


def prepare_workdir(workdir: Path) -> dict[str, Path]:
    """Empty `workdir` (only if it is a previous rehearsal's, or empty) and lay it out."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / _REHEARSAL_MARK).exists():
            raise BuildError(
                f"--workdir {workdir} is not empty and was not made by a rehearsal; refusing to "
                f"delete it. Fix: pass an empty or new folder."
            )
        shutil.rmtree(workdir)
    layout = {
        "root": workdir,
        "input": workdir / "input",
        "executed": workdir / "executed",
        "solution": workdir / "solution.csv",
    }
    for key in ("input", "executed"):
        layout[key].mkdir(parents=True, exist_ok=True)
    (workdir / _REHEARSAL_MARK).write_text("made by build_kernels.py --rehearse\n")
    return layout


def make_synthetic(layout: dict, spec_overrides: dict) -> Path:
    """The synthetic competition under input/, its truth moved out of the notebooks' sight."""
    import dataclasses

    from lib.synthetic import SyntheticSpec, make_competition

    tuples = {f.name for f in dataclasses.fields(SyntheticSpec) if isinstance(f.default, tuple)}
    values = {k: tuple(v) if k in tuples else v for k, v in spec_overrides.items()}  # JSON lists
    comp = make_competition(layout["input"], SyntheticSpec(**values))
    shutil.move(str(layout["input"] / "solution.csv"), layout["solution"])
    return comp


def working_dir(layout: dict, kernel: str) -> Path:
    """Each notebook gets its own working folder, as on Kaggle (nothing leaks between them)."""
    path = layout["root"] / "working" / kernel
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_kernel(name: str, folder: Path, layout: dict, config: dict, args, offline: bool):
    """Execute build/<name>/<name>.ipynb like Kaggle would; save the executed copy."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    working = working_dir(layout, name)
    extra = {
        "KAGGLE_INPUT_DIR": str(layout["input"]),
        "KAGGLE_WORKING_DIR": str(working),
        "BIRDCLEF_CONFIG": json.dumps(config),
    }
    env = kernel_env(os.environ, REPO, extra)
    executed_path = layout["executed"] / f"{name}.ipynb"
    how = "online"
    if offline:
        how = "offline: unshare --net" if offline_prefix() else "offline: socket-blocker fallback"
    print(f"rehearsal: running {name} ({how}) in {working}")
    try:
        nb, seconds = execute_notebook(nb, working, env, offline=offline, timeout=args.cell_timeout)
    except CellExecutionError as err:
        nbformat.write(nb, executed_path)
        summary = str(err).strip().splitlines()[-1:] or ["(no message)"]
        raise BuildError(
            f"rehearsal: notebook {name} failed: {summary[0]}\nExecuted copy with the "
            f"traceback: {executed_path}"
        ) from err
    nbformat.write(nb, executed_path)
    print(f"rehearsal: {name} took {seconds:.1f} s; slowest cells:")
    for cell_s, index, first_line in cell_seconds(nb)[:3]:
        print(f"    {cell_s:8.1f} s  cell {index}: {first_line}")
    return working, seconds


def expected_columns(competition: Path, solution) -> list[str]:
    """row_id + species in sample_submission.csv's order (else the solution's)."""
    import pandas as pd

    sample = competition / "sample_submission.csv"
    if sample.is_file():
        return list(pd.read_csv(sample, nrows=0).columns)
    return list(solution.columns)


def check_submission(path: Path, columns: list[str], solution) -> list[str]:
    """Problems with a submission.csv (empty list: fine): columns, row ids, probability range."""
    import numpy as np
    import pandas as pd

    if not path.is_file():
        return [f"{path} was not written (the inference notebook must write submission.csv)"]
    sub = pd.read_csv(path)
    problems = []
    if list(sub.columns) != columns:
        problems.append(f"columns differ from sample_submission.csv: {list(sub.columns)[:5]}...")
    if "row_id" not in sub.columns:
        return problems + ["no row_id column"]
    if sub.row_id.duplicated().any():
        problems.append(f"duplicated row_id, e.g. {sub.row_id[sub.row_id.duplicated()].iloc[0]}")
    missing = sorted(set(solution.row_id) - set(sub.row_id))
    extra = sorted(set(sub.row_id) - set(solution.row_id))
    if missing or extra:
        problems.append(f"row_id mismatch: missing {missing[:3]}, extra {extra[:3]}")
    numeric = sub.drop(columns="row_id").apply(pd.to_numeric, errors="coerce")  # text -> NaN
    values = numeric.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        problems.append("NaN or infinite probabilities")
    elif values.size and (values.min() < 0 or values.max() >= 1):
        problems.append(f"probabilities outside [0, 1): min {values.min()}, max {values.max()}")
    return problems


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


def projected_minutes(infer_seconds: float, windows: int, working: Path) -> float:
    """Minutes the inference notebook would take on the hidden test, from this run.

    If the notebook writes working/timing.json ({"windows": n, "seconds": s}, the prediction
    loop alone), fixed costs are kept apart: total - s + s / n * HIDDEN_TEST_WINDOWS. Otherwise
    all time is treated as per-window (an over-estimate on a tiny test set).
    """
    timing = working / "timing.json"
    if timing.is_file():
        data = json.loads(timing.read_text())
        loop = float(data["seconds"])
        return (infer_seconds - loop + loop / int(data["windows"]) * HIDDEN_TEST_WINDOWS) / 60
    return infer_seconds / max(windows, 1) * HIDDEN_TEST_WINDOWS / 60


def rehearse_inputs(layout: dict, train_working: Path, wheel_cache: Path) -> None:
    """Mount the models and wheels datasets under input/ like Kaggle attaches them."""
    copy_models(train_working, layout["input"] / MODELS_DATASET_SLUG)
    wheels = cached_wheels(wheel_cache, pinned_version(REPO / "requirements.txt"))
    copy_wheels(wheels, layout["input"] / WHEELS_DATASET_SLUG)


def rehearse(args, folders: dict[str, Path]) -> dict:
    """Run train then offline inference on a synthetic competition; check, score, report."""
    import pandas as pd

    from lib.config import Config
    from lib.metric import padded_cmap

    missing = [name for name in ("train", "infer") if name not in folders]
    if missing:
        raise BuildError(f"rehearsal needs kernels/{missing[0]}.py (missing: {missing})")
    train_config = {**REHEARSAL_TRAIN_CONFIG, **json.loads(args.rehearse_config)}
    Config.from_dict(train_config)  # unknown fields fail here, not 10 minutes in
    layout = prepare_workdir(Path(args.workdir))
    start = time.perf_counter()
    competition = make_synthetic(layout, {**REHEARSAL_SPEC, **json.loads(args.rehearse_spec)})
    print(f"rehearsal: synthetic competition in {time.perf_counter() - start:.1f} s")
    train_working, train_s = run_kernel(
        "train", folders["train"], layout, train_config, args, False
    )
    rehearse_inputs(layout, train_working, Path(args.wheel_cache))
    infer_working, infer_s = run_kernel(
        "infer", folders["infer"], layout, REHEARSAL_INFER_CONFIG, args, True
    )
    solution = pd.read_csv(layout["solution"])
    submission_path = infer_working / "submission.csv"
    columns = expected_columns(competition, solution)
    problems = check_submission(submission_path, columns, solution)
    if problems:
        raise BuildError(f"rehearsal: {submission_path}: " + "; ".join(problems))
    submission = pd.read_csv(submission_path)
    score = padded_cmap(solution, submission)
    minutes = projected_minutes(infer_s, len(submission), infer_working)
    report = {"score": score, "train_s": train_s, "infer_s": infer_s, "projected_min": minutes}
    print(
        f"rehearsal: padded cmAP {score:.4f} on {len(submission)} windows | train {train_s:.0f} s"
        f" | infer {infer_s:.0f} s | projected hidden test ({HIDDEN_TEST_WINDOWS} windows) "
        f"{minutes:.1f} min here with this rehearsal's {Config.from_dict(train_config).backbone}"
        f" folds ({os.cpu_count()} cores; Kaggle: 4 cores, {KAGGLE_LIMIT_MINUTES} min limit; "
        "the recipe's efficientnet_b0: see benchmarks/RESULTS.md)"
    )
    return report


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------


def owner_help(fields: list[str]) -> str:
    listing = "\n".join(f"  - {field}" for field in fields)
    return (
        f"No Kaggle username found: these fields hold the placeholder {OWNER_PLACEHOLDER!r}:\n"
        f"{listing}\nFix: rebuild with --owner NAME, or `export KAGGLE_USERNAME=NAME`, or put "
        f"your kaggle.json in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR)."
    )


def placeholder_fields(out: Path, kernel_names, dataset_keys) -> list[str]:
    fields = []
    for name in kernel_names:
        meta = json.loads((out / name / "kernel-metadata.json").read_text())
        fields.append(f"{out / name / 'kernel-metadata.json'}: id")
        if meta["dataset_sources"] or meta["kernel_sources"]:
            fields.append(f"{out / name / 'kernel-metadata.json'}: dataset/kernel_sources")
    fields += [f"{out / key / 'dataset-metadata.json'}: id" for key in dataset_keys]
    return fields


def write_datasets(args, out: Path, owner: str, datasets: dict) -> None:
    """Every dataset folder's metadata; models and wheels contents when asked or cached."""
    for key, spec in datasets.items():
        folder = out / key
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "dataset-metadata.json", dataset_metadata(spec, owner))
    if "models" in datasets and args.models_from:
        copied = copy_models(Path(args.models_from), out / "models")
        print(f"models: {len(copied)} files from {args.models_from} -> {out / 'models'}")
    if "wheels" in datasets:
        version = pinned_version(REPO / "requirements.txt")
        cache = Path(args.wheel_cache)
        wheels = fetch_wheels(cache, version) if args.wheels else cached_wheels(cache, version)
        if wheels:
            copy_wheels(wheels, out / "wheels")
            print(f"wheels: {', '.join(w.name for w in wheels)} -> {out / 'wheels'}")
        else:
            print(f"wheels: not in {cache}; run with --wheels once (needs network) to fetch them")


def build(args, kernels: dict = KERNELS, datasets: dict = DATASETS) -> dict[str, Path]:
    """Write every kernel folder and dataset folder; return {kernel name: folder}."""
    check_tables(kernels, datasets)
    out, lib_dir = Path(args.out), Path(args.lib_dir)
    owner, origin = resolve_owner(args.owner, os.environ, Path.home())
    sources = kernel_sources(Path(args.kernels_dir), kernels)
    folders = {}
    for name, source in sources.items():
        start = time.perf_counter()
        folders[name] = write_kernel(
            name, source, kernels[name], lib_dir, out, owner or OWNER_PLACEHOLDER
        )
        seconds = time.perf_counter() - start
        print(f"kernel {name}: {folders[name] / (name + '.ipynb')} ({seconds:.2f} s)")
    missing = sorted(set(kernels) - set(sources))
    if missing:
        print(f"kernels not built (no source in {args.kernels_dir}): {', '.join(missing)}")
    write_datasets(args, out, owner or OWNER_PLACEHOLDER, datasets)
    if owner:
        print(f"owner: {owner} (from {origin})")
    else:
        print(owner_help(placeholder_fields(out, folders, datasets)))
    return folders


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kernels-dir", default=str(REPO / "kernels"),
        help="folder of jupytext py:percent kernel sources (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--lib-dir", default=str(REPO / "lib"),
        help="library package inlined into the notebooks; its folder name is the import name "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=str(REPO / "build"),
        help="output folder: <out>/<kernel>/ and <out>/<dataset>/ (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--owner",
        help="Kaggle username for ids and sources; default $KAGGLE_USERNAME, then the username in "
        "kaggle.json ($KAGGLE_CONFIG_DIR, ~/.kaggle, ~/.config/kaggle); else a placeholder "
        f"{OWNER_PLACEHOLDER!r} is written and the fields needing it are listed",
    )
    parser.add_argument(
        "--models-from", metavar="DIR",
        help="a training run's output folder: its " + ", ".join(MODEL_PATTERNS)
        + " files are copied into <out>/models/ (emptied first)",
    )  # fmt: skip
    parser.add_argument(
        "--wheels", action="store_true",
        help="fetch onnxruntime (pinned in requirements.txt) + flatbuffers wheels for Kaggle's "
        f"image (Python {KAGGLE_PYTHON}, manylinux x86_64) into --wheel-cache if missing (needs "
        "network once), and copy them to <out>/wheels/. Without it, cached wheels are still copied",
    )  # fmt: skip
    parser.add_argument(
        "--wheel-cache", default=str(default_wheel_cache(os.environ)),
        help="where downloaded wheels are kept between builds (default: %(default)s)",
    )  # fmt: skip


def _add_rehearsal_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rehearse", action="store_true",
        help="after building, run the whole Kaggle loop locally on a synthetic competition: "
        "train notebook, models dataset, offline inference notebook, submission check, score",
    )  # fmt: skip
    parser.add_argument(
        "--min-score", type=float, default=0.90,
        help="rehearsal: exit 1 when the submission's padded cmAP on the synthetic truth is "
        "below this (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", default=str(REPO / "work" / "rehearsal"),
        help="rehearsal folder: input/, working/<kernel>/, solution.csv, executed/ (default: "
        "%(default)s; emptied at the start of a rehearsal)",
    )  # fmt: skip
    parser.add_argument(
        "--rehearse-config", metavar="JSON", default="{}",
        help="JSON object merged into the rehearsal's training config override "
        '(BIRDCLEF_CONFIG), e.g. \'{"epochs": 1}\'',
    )  # fmt: skip
    parser.add_argument(
        "--rehearse-spec", metavar="JSON", default="{}",
        help="JSON object of lib.synthetic.SyntheticSpec fields for the rehearsal's synthetic "
        'competition, e.g. \'{"n_species": 4}\'',
    )  # fmt: skip
    parser.add_argument(
        "--cell-timeout", type=int, default=3600,
        help="rehearsal: seconds one notebook cell may run (default: %(default)s)",
    )  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_kernels.py",
        description=__doc__.split("\n\n")[0],
        epilog="Then: kaggle datasets create -p build/wheels (and build/models after training); "
        "kaggle kernels push -p build/train; kaggle kernels push -p build/infer.",
    )
    _add_build_options(parser)
    _add_rehearsal_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        folders = build(args)
        print(f"build: {time.perf_counter() - start:.2f} s -> {args.out}")
        if args.rehearse:
            report = rehearse(args, folders)
            total = time.perf_counter() - start
            print(f"rehearsal: {total / 60:.1f} min in all")
            if report["score"] < args.min_score:
                print(
                    f"rehearsal FAILED: padded cmAP {report['score']:.4f} < --min-score "
                    f"{args.min_score}",
                    file=sys.stderr,
                )
                return 1
            print(f"rehearsal passed: padded cmAP {report['score']:.4f} >= {args.min_score}")
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
