"""Inlining `lib` into notebook cells: a Kaggle notebook cannot import this repository.

Every code cell that imports from `lib` is preceded by the source of the library modules it
needs (transitively, in dependency order, each module once per notebook), one cell per module,
folded away in Kaggle's viewer (`_kg_hide-input`) and headed by the module's name and purpose;
the cell keeps its own code, visible. The build fails if any `lib` import survives, or if a
kernel imports `workbench` (the user's-machine package).
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from lib.inlined import HIDDEN_CELL_METADATA, lib_cell_header
from workbench.errors import BuildError

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
MACHINE_PACKAGE = "workbench"  # runs on the user's machine only: a kernel must not import it

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
    purpose: str = ""  # the first line of the module's docstring

    def cell_text(self, package: str) -> str:
        """The module as one notebook cell: header, purpose, its own future line, code."""
        lines = [lib_cell_header(package, self.name)]
        lines += [f"# {self.purpose}"] if self.purpose else []
        lines += _future_line(list(self.futures))
        return "\n".join(lines) + "\n\n" + self.code


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
    for node in _machine_imports(tree)[:1]:
        raise _machine_import_error(f"{where}:{node.lineno}", ast.unparse(node))
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
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    purpose = doc[0] if doc else ""
    return LibModule(
        name, path, tuple(dict.fromkeys(deps)), tuple(futures), code, bindings, purpose
    )


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


def _needed_modules(lib_dir: Path, roots: list[str], done: list[str], cache: dict):
    """The modules `roots` need that `done` lacks, dependencies first; `done` is extended."""
    needed = [m for m in dependency_order(lib_dir, roots, cache) if m not in done]
    modules = [cache[m] for m in needed]
    check_name_clashes([cache[m] for m in done] + modules)
    done.extend(needed)
    return modules


def _library_parts(lib_dir: Path, roots: list[str], done: list[str], cache: dict):
    """(futures, header + code per module) of the modules `roots` need that `done` lacks, for
    the one-cell form (futures hoisted by the caller)."""
    modules = _needed_modules(lib_dir, roots, done, cache)
    futures = [f for m in modules for f in m.futures]
    parts = [f"{lib_cell_header(lib_dir.name, m.name)}\n{m.code}" for m in modules]
    return futures, parts


def _future_line(futures: list[str]) -> list[str]:
    return [f"from __future__ import {', '.join(dict.fromkeys(futures))}"] if futures else []


def _cell_parts(source: str, lib_dir: Path, where: str):
    """(lib module names imported, the cell's own futures, the cell's code without its lib
    imports and futures, alias lines), or None if the cell imports nothing from lib."""
    package = lib_dir.name
    if not re.search(_LIB_HINT_RE.format(re.escape(package)), source):
        return None
    imports, future_nodes = _cell_lib_imports(source, package, where)
    if not imports:
        return None
    roots = [_lib_import_target(node, package, where) for node in imports]
    futures = [a.name for n in future_nodes for a in n.names]
    spans = [(n.lineno, n.end_lineno, []) for n in [*imports, *future_nodes]]
    rest = _tidy(_drop_spans(source, spans))
    aliases = [line for node in imports for line in _alias_lines(node)]
    return roots, futures, rest, aliases


def split_cell(
    source: str, lib_dir: Path, done: list[str], cache: dict, where: str
) -> tuple[list[str], str]:
    """(one cell text per library module the cell needs that the notebook lacks, the cell's own
    code without its lib imports: "" when nothing but comments is left).

    `done` lists modules already inlined by earlier cells and is extended in place.
    """
    parts = _cell_parts(source, lib_dir, where)
    if parts is None:
        return [], source
    roots, futures, rest, aliases = parts
    modules = _needed_modules(lib_dir, roots, done, cache)
    rest = re.sub(r"\n{3,}", "\n\n", rest)  # where imports were: one blank line, as ruff has it
    own = [*_future_line(futures), "\n".join(aliases), rest]
    code = "\n\n\n".join(part for part in own if part)
    if all(not ln.strip() or ln.lstrip().startswith("#") for ln in code.splitlines()):
        code = ""
    return [m.cell_text(lib_dir.name) for m in modules], code


def inline_cell(source: str, lib_dir: Path, done: list[str], cache: dict, where: str) -> str:
    """The cell with its lib imports replaced by the library code not yet in the notebook, as
    one cell (futures hoisted): the library as code in `__main__`, for tests.

    `done` lists modules already inlined by earlier cells and is extended in place.
    """
    parts = _cell_parts(source, lib_dir, where)
    if parts is None:
        return source
    roots, futures, rest, aliases = parts
    lib_futures, modules = _library_parts(lib_dir, roots, done, cache)
    parts = [*_future_line(futures + lib_futures), *modules]
    parts.extend(part for part in ("\n".join(aliases), rest) if part)
    return "\n\n\n".join(parts)


def inline_library(lib_dir: Path, modules: list[str]) -> str:
    """One cell holding `modules` and their dependencies exactly as a built notebook holds them
    (for tests that run library code the way a notebook does, in `__main__`)."""
    futures, parts = _library_parts(lib_dir, list(modules), [], {})
    return "\n\n\n".join([*_future_line(futures), *parts])


def _machine_imports(tree: ast.AST) -> list[ast.stmt]:
    """`import workbench...` / `from workbench... import` statements anywhere in `tree`."""
    package = MACHINE_PACKAGE
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(n == package or n.startswith(package + ".") for n in names):
            found.append(node)
    return found


def _machine_import_error(where: str, statement: str) -> BuildError:
    return BuildError(
        f"{where}: `{statement}` imports {MACHINE_PACKAGE}, which runs only on the user's "
        f"machine: a Kaggle notebook cannot import it. Fix: import what the notebook needs from "
        f"lib/ (move the code into lib/ if a notebook must run it)."
    )


def check_no_machine_imports(source_path: Path, nb) -> None:
    """Refuse a kernel whose cells import `workbench`, naming the source file and line."""
    file_lines = source_path.read_text(encoding="utf-8").splitlines()
    pattern = re.compile(_LIB_HINT_RE.format(MACHINE_PACKAGE))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not pattern.search(cell.source):
            continue
        code = _python_source(cell.source)
        if code is None:  # not Python: report what the pattern found
            line = next((ln for ln in cell.source.splitlines() if pattern.search(ln)), "")
            nodes = [(line, None)]
        else:
            lines = cell.source.splitlines()
            nodes = [(lines[n.lineno - 1], n) for n in _machine_imports(ast.parse(code))]
        for line, node in nodes[:1]:
            text = ast.unparse(node) if node is not None else line.strip()
            at = [k + 1 for k, ln in enumerate(file_lines) if ln == line]
            where = f"{source_path}:{at[0]}" if at else f"{source_path} (cell {index})"
            raise _machine_import_error(where, text)


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


def _library_note(package: str, names: list[str]) -> str:
    """The line above a run of folded library cells: what they are and how to open them."""
    listed = ", ".join(f"`{package}/{name}.py`" for name in names)
    return (
        f"*The library, folded away ({len(names)} module{'s' * (len(names) > 1)}, one cell each; "
        f'"Show hidden code" opens them):* {listed}'
    )


def _inline_cells(cells: list, source_path: Path, lib_dir: Path) -> list:
    """The kernel's cells with one hidden cell per library module before the cell that first
    imports it; a cell left with nothing of its own (imports only) is dropped."""
    done: list[str] = []
    cache: dict = {}
    out = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            out.append(cell)
            continue
        where = f"{source_path} (cell {index})"
        before = len(done)
        modules, code = split_cell(cell.source, lib_dir, done, cache, where)
        if modules:
            out.append(nbformat.v4.new_markdown_cell(_library_note(lib_dir.name, done[before:])))
        for text in modules:
            out.append(nbformat.v4.new_code_cell(text, metadata=dict(HIDDEN_CELL_METADATA)))
        if code:
            cell.source = code
            out.append(cell)
    return out


def build_notebook(source_path: Path, lib_dir: Path):
    """Read a py:percent kernel source and return the self-contained, validated notebook."""
    nb = jupytext.reads(source_path.read_text(encoding="utf-8"), fmt="py:percent")
    check_no_machine_imports(source_path, nb)
    nb.cells = _inline_cells(nb.cells, source_path, lib_dir)
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
