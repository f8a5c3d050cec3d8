"""Where a notebook finds its inputs and writes its outputs: the one place Kaggle paths live.

On Kaggle inputs are mounted read-only under `/kaggle/input` and outputs go to
`/kaggle/working`. Both roots can be moved with environment variables (`KAGGLE_INPUT_DIR`,
`KAGGLE_WORKING_DIR`) so the same notebooks run on a user's own machine on downloaded data and in
the local rehearsal. Mount points are looked up, never assumed: newer Kaggle images may mount a
competition at `<input>/competitions/<slug>` and a dataset at `<input>/datasets/<owner>/<slug>`;
an attached notebook's output is at `<input>/notebooks/<owner>/<slug>` (older: `<input>/<slug>`).

Everything here is a pure function of its arguments and the environment; nothing happens at
import. A missing input raises FileNotFoundError naming every path tried and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

# The default competition (lib.competitions.DEFAULT_COMPETITION; not imported, so the
# inference notebook does not inline the profiles for one string). Other years pass their slug.
COMPETITION_SLUG = "birdclef-2023"


def models_dataset_slug(competition: str = COMPETITION_SLUG) -> str:
    """The models dataset of a competition's run: 'birdclef-2025' -> 'birdclef-2025-sed-models'.
    Shared by build_kernels.py (which writes its metadata) and the notebooks."""
    return f"{competition}-sed-models"


def wheels_dataset_slug(competition: str = COMPETITION_SLUG) -> str:
    """The onnxruntime wheels dataset the competition's inference notebook attaches:
    'birdclef-2025' -> 'birdclef-2025-onnxruntime-wheels'."""
    return f"{competition}-onnxruntime-wheels"


# 2023's, as before the per-year slugs.
MODELS_DATASET_SLUG = models_dataset_slug(COMPETITION_SLUG)
WHEELS_DATASET_SLUG = wheels_dataset_slug(COMPETITION_SLUG)

_DEFAULT_INPUT = "/kaggle/input"
_DEFAULT_WORKING = "/kaggle/working"
_SEARCH_DEPTH = 4  # <input>/datasets/<owner>/<slug>/<sub> is the deepest Kaggle layout known


def input_root() -> Path:
    """Root of the read-only inputs: `$KAGGLE_INPUT_DIR`, else `/kaggle/input`."""
    return Path(os.environ.get("KAGGLE_INPUT_DIR") or _DEFAULT_INPUT)


def working_root() -> Path:
    """Where outputs go (`submission.csv`, models): `$KAGGLE_WORKING_DIR`, else `/kaggle/working`.

    Not created here (no I/O at import or lookup); the writer creates it.
    """
    return Path(os.environ.get("KAGGLE_WORKING_DIR") or _DEFAULT_WORKING)


def _resolve_input_root(root: str | Path | None) -> Path:
    """`root` if given, else the environment's input root (parameters shadow `input_root`)."""
    return Path(root) if root is not None else input_root()


def _input_not_found(what: str, tried: list[Path], fix: str) -> FileNotFoundError:
    lines = "\n".join(f"  - {path}" for path in tried)
    return FileNotFoundError(f"{what} not found. Paths tried:\n{lines}\nFix: {fix}")


def find_competition(input_root: str | Path | None = None, slug: str = COMPETITION_SLUG) -> Path:
    """The competition folder: `<input>/<slug>` or `<input>/competitions/<slug>`.

    `input_root` defaults to `input_root()` (the environment); it is a parameter so tests and
    callers with unusual layouts need not touch the environment.
    """
    root = _resolve_input_root(input_root)
    tried = [root / slug, root / "competitions" / slug]
    for path in tried:
        if path.is_dir():
            return path
    raise _input_not_found(
        f"competition data '{slug}'",
        tried,
        f"attach the '{slug}' competition to the notebook (Add Input > Competitions), or "
        f"set KAGGLE_INPUT_DIR to the folder that holds '{slug}/' (now: {root}).",
    )


def _dir_holds(folder: Path, required_file: str | None) -> bool:
    """Whether `folder` is a directory holding `required_file` (a name or glob pattern)."""
    if not folder.is_dir():
        return False
    return required_file is None or any(folder.glob(required_file))


def _search_dataset_dirs(root: Path, required_file: str) -> list[Path]:
    """Folders under `root` (up to _SEARCH_DEPTH deep) holding `required_file`, sorted."""
    found: set[Path] = set()
    for depth in range(1, _SEARCH_DEPTH + 1):
        pattern = "/".join(["*"] * depth) + "/" + required_file
        found.update(match.parent for match in root.glob(pattern))
    return sorted(found)


def find_dataset(
    slug: str, input_root: str | Path | None = None, required_file: str | None = None
) -> Path:
    """The folder of an attached dataset.

    Tried in order: `<input>/<slug>`, `<input>/datasets/<owner>/<slug>` (any owner), then, if
    `required_file` (a file name or glob such as `*.onnx`) is given, any folder under the input
    root holding it, so a renamed or forked copy of the dataset is still found. A candidate only
    counts if it holds `required_file`. Several matching folders from the search are ambiguous:
    that raises instead of silently picking one (wrong models would score, just badly).
    """
    root = _resolve_input_root(input_root)
    direct = root / slug
    tried = [direct, root / "datasets" / "*" / slug]
    candidates = [direct, *sorted(root.glob(f"datasets/*/{slug}"))]
    for path in candidates:
        if _dir_holds(path, required_file):
            return path
    if required_file is not None:
        tried.append(root / "**" / required_file)
        found = _search_dataset_dirs(root, required_file)
        named = [path for path in found if path.name == slug]
        if len(named) == 1 or len(found) == 1:
            return (named or found)[0]
        if found:
            listing = ", ".join(str(path) for path in found)
            raise FileNotFoundError(
                f"dataset '{slug}': no folder of that name, and several folders hold "
                f"'{required_file}': {listing}. Fix: detach the extra datasets, or attach "
                f"'{slug}' so it is mounted at {direct}."
            )
    wanted = f" holding '{required_file}'" if required_file else ""
    raise _input_not_found(
        f"dataset '{slug}'{wanted}",
        tried,
        f"attach the '{slug}' dataset to the notebook (Add Input > Datasets; build it with "
        f"`python build_kernels.py` and `kaggle datasets create -p build/...`), or set "
        f"KAGGLE_INPUT_DIR to the folder that holds '{slug}/' (now: {root}).",
    )


class AmbiguousInputError(ValueError):
    """Several attached inputs fit and picking one silently could be wrong; the message names
    every candidate and the setting that picks one."""


def _pick_name(path: Path, root: Path) -> str:
    """How a setting names this copy: 'owner/slug' under <input>/notebooks, else its path."""
    parts = path.relative_to(root).parts if path.is_relative_to(root) else ()
    if len(parts) == 3 and parts[0] == "notebooks":
        return f"{parts[1]}/{parts[2]}"
    return str(path)


def find_notebook_output(
    slug: str,
    input_root: str | Path | None = None,
    owner: str | None = None,
    required: str | None = None,
    setting: str | None = None,
) -> Path:
    """The folder where an attached notebook's output is mounted.

    Kaggle has mounted a notebook's output at `<input>/notebooks/<owner>/<slug>/` (current
    images) and at `<input>/<slug>/` (older ones); both are tried, `owner`'s first when given,
    then any folder named `slug` up to _SEARCH_DEPTH deep. `slug` may also be 'owner/slug' or
    an absolute folder, which picks that copy. A candidate counts only if it holds `required`
    (a name or glob, e.g. "runs") when given. Several candidates are ambiguous:
    AmbiguousInputError naming each and `setting` (the caller's variable that picks one, e.g.
    the notebook's RESUME_FROM): resuming someone else's run would be silently wrong.
    FileNotFoundError names every path tried and the fix.
    """
    root = _resolve_input_root(input_root)
    if Path(slug).is_absolute():
        if _dir_holds(Path(slug), required):
            return Path(slug)
        raise _input_not_found(f"notebook output {slug}", [Path(slug)], "set the folder of "
                               f"an attached notebook output holding '{required}'")  # fmt: skip
    if "/" in slug:
        owner, slug = slug.split("/", 1)
    owners = [root / "notebooks" / owner / slug] if owner else []
    tried = [*owners, root / "notebooks" / "*" / slug, root / slug]
    direct = [*owners, *sorted(root.glob(f"notebooks/*/{slug}")), root / slug]
    held = [path for path in dict.fromkeys(direct) if _dir_holds(path, required)]
    if owner and held and held[0] == owners[0]:
        return held[0]
    if not held:
        tried.append(root / "**" / slug)
        patterns = ["/".join(["*"] * depth + [slug]) for depth in range(_SEARCH_DEPTH)]
        found = {path for pattern in patterns for path in root.glob(pattern)}
        held = [path for path in sorted(found) if _dir_holds(path, required)]
    if len(held) == 1:
        return held[0]
    if held:
        listing = "\n".join(f"  - {path}" for path in held)
        names = " or ".join(repr(_pick_name(path, root)) for path in held)
        pick = f"set {setting} = {names}" if setting else f"pass {names} as the slug"
        raise AmbiguousInputError(
            f"notebook output '{slug}': {len(held)} attached copies hold "
            f"'{required or slug}':\n{listing}\nFix: detach all but the one to use (Add Input), "
            f"or {pick}."
        )
    wanted = f" holding '{required}'" if required else ""
    raise _input_not_found(
        f"output of notebook '{slug}'{wanted}",
        tried,
        f"attach the notebook's output (Add Input > Your Work > Notebooks > '{slug}'; "
        "`python build_kernels.py --resume` attaches the training notebook's own output), or "
        f"set KAGGLE_INPUT_DIR to the folder that holds it (now: {root}).",
    )
