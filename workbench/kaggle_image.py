"""Kaggle's notebook image as a local environment, and each notebook's own throwaway overlay.

`kaggle_images.toml` (repository root) lists each image: its Python and package versions. The
image venv is built once from PyPI (torch's CUDA wheels: ~4 GB, a few minutes) and cached under
<XDG cache>/birdclef-kit/images/<name>-<hash of the entry>/; a marker written last means a
half-made venv is never reused. It holds no onnxruntime, as on Kaggle.

A notebook never runs in a base environment itself: it gets an overlay venv (same Python) whose
site-packages sees the base's packages through a folder of links that leaves out the hidden ones
(onnxruntime). A `pip install` inside the notebook lands in the overlay and dies with it, so
nothing the training notebook installs is visible to the inference notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from workbench.errors import BuildError

IMAGES_FILE = Path(__file__).resolve().parents[1] / "kaggle_images.toml"
# What runs the notebooks (Kaggle's image has it too); the builder's own pin (requirements.txt).
KERNEL_PACKAGES = {"ipykernel": "7.4.0"}
HIDDEN_DISTRIBUTIONS = ("onnxruntime",)  # not in Kaggle's image: the notebooks install it
_COMPLETE = ".birdclef-image-complete"
_ASK = "import sys; print(sys.version.split()[0]); print(sys.executable)"


@dataclass(frozen=True)
class KaggleImage:
    """One entry of kaggle_images.toml."""

    name: str
    python: str  # e.g. "3.12.13"; a local 3.12.x is used
    packages: dict[str, str] = field(default_factory=dict)
    source: str = ""
    date: str = ""
    forced: dict[str, str] = field(default_factory=dict)  # installed last, --no-deps

    @property
    def minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def key(self) -> str:
        """A short hash of everything that goes into the venv (the cache folder's name)."""
        entry = [self.python, self.packages, self.forced, KERNEL_PACKAGES]
        text = json.dumps(entry, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def requirements(self) -> list[str]:
        return [f"{n}=={v}" for n, v in {**self.packages, **KERNEL_PACKAGES}.items()]


def load_images(path: Path = IMAGES_FILE) -> dict[str, KaggleImage]:
    """Every image listed in `path`; a malformed entry is a BuildError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BuildError(f"{path}: {err}. Fix: restore kaggle_images.toml (git).") from err
    images = {}
    for name, entry in data.items():
        packages = entry.get("packages") if isinstance(entry, dict) else None
        python = entry.get("python") if isinstance(entry, dict) else None
        if not isinstance(python, str) or not re.fullmatch(r"3\.\d+(\.\d+)?", python):
            raise BuildError(f'{path}: [{name}] needs python = "3.X[.Y]", got {python!r}')
        if not isinstance(packages, dict) or not packages:
            raise BuildError(f'{path}: [{name}.packages] must list package = "version" pairs')
        hidden = [p for p in packages if p.lower() in HIDDEN_DISTRIBUTIONS]
        if hidden:
            raise BuildError(
                f"{path}: [{name}.packages] lists {hidden}; Kaggle's image has no onnxruntime "
                "(the notebook installs it from the wheels dataset). Fix: remove it."
            )
        packages = {str(k): str(v) for k, v in packages.items()}
        forced = {str(k): str(v) for k, v in dict(entry.get("forced", {})).items()}
        info = {k: str(entry.get(k, "")) for k in ("source", "date")}
        images[name] = KaggleImage(name, python, packages, **info, forced=forced)
    return images


def get_image(name: str, path: Path = IMAGES_FILE) -> KaggleImage:
    images = load_images(path)
    if name not in images:
        raise BuildError(f"--kaggle-image {name}: not in {path} (it lists {sorted(images)})")
    return images[name]


def python_candidates(minor: str, environ=os.environ) -> list[Path]:
    """Pythons that may be `minor` (e.g. 3.12): pyenv's installs, newest first, then PATH's."""
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = [v / "bin" / f"python{minor}" for v in root.glob(f"{minor}.*")] if root.is_dir() else []
    found.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p.parents[1].name)], reverse=True)
    on_path = shutil.which(f"python{minor}", path=environ.get("PATH"))
    return [p for p in found if p.exists()] + ([Path(on_path)] if on_path else [])


def find_python(minor: str, environ=os.environ) -> tuple[Path, str]:
    """(real executable, full version) of a working Python `minor`; a BuildError naming the
    places looked at otherwise."""
    candidates = python_candidates(minor, environ)
    for candidate in candidates:
        try:
            answer = subprocess.run(
                [str(candidate), "-c", _ASK], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version, _, executable = answer.stdout.strip().partition("\n")
        if answer.returncode == 0 and version.startswith(f"{minor}."):
            return Path(executable), version
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    looked = [str(c) for c in candidates] or [f"{root}/{minor}.*/bin/python{minor}"]
    raise BuildError(
        f"no working Python {minor} found (looked at {', '.join(looked)} and python{minor} on "
        f"PATH). Fix: `pyenv install {minor}` or install python{minor} (with its venv module)."
    )


def images_cache(environ=os.environ) -> Path:
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "birdclef-kit" / "images"


def _run(command: list, what: str, fix: str) -> None:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).splitlines()
        tail = "\n".join(line for line in lines if "is ignored: it is neither" not in line)[-2000:]
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}\nFix: {fix}")


def image_venv(image: KaggleImage, cache: Path | None = None, environ=os.environ) -> Path:
    """The cached venv of `image` (built first if missing): its Python, exactly its versions,
    plus KERNEL_PACKAGES. Built under a temporary name, marked complete last, then renamed."""
    cache = cache or images_cache(environ)
    venv = cache / f"{image.name}-py{image.minor}-{image.key()}"
    if (venv / _COMPLETE).is_file():
        return venv
    python, version = find_python(image.minor, environ)
    building = cache / f"{venv.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)  # an unmarked leftover of an interrupted build
    cache.mkdir(parents=True, exist_ok=True)
    print(f"kaggle image {image.name}: building {venv} on Python {version} (once; ~4 GB)")
    try:
        _install(image, python, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    try:
        building.rename(venv)
    except OSError:  # another build finished first: keep its venv
        shutil.rmtree(building, ignore_errors=True)
    return venv


def _install(image: KaggleImage, python: Path, building: Path) -> None:
    """A venv at `building` with the image's packages, then its forced ones, then the marker."""
    fix_venv = f"install Python {image.minor}'s venv module (Debian: python{image.minor}-venv)"
    _run([python, "-m", "venv", building], f"{python} -m venv {building}", fix_venv)
    pip = [building / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check"]
    _run(
        [*pip, "--only-binary=:all:", *image.requirements()],
        f"installing kaggle image {image.name}'s packages into {building}",
        f"the first build needs PyPI; check the versions in {IMAGES_FILE} exist for "
        f"Python {image.minor} (manylinux wheels)",
    )
    if image.forced:
        forced = [f"{n}=={v}" for n, v in image.forced.items()]
        _run([*pip, "--only-binary=:all:", "--no-deps", *forced], f"forcing {forced}", "as above")
    record = {"python": str(python), **image.packages, **image.forced}
    (building / _COMPLETE).write_text(json.dumps(record) + "\n")


def site_packages(python: Path) -> Path:
    """The purelib folder of the environment of `python`."""
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    done = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def _hidden(entry: str, hide: tuple[str, ...]) -> bool:
    """Whether a site-packages entry belongs to a hidden distribution (package or metadata)."""
    name = re.split(r"[-.]", entry, maxsplit=1)[0].lower().replace("-", "_")
    return name in {h.lower().replace("-", "_") for h in hide}


def overlay_venv(
    base_python: Path, dest: Path, hide: tuple[str, ...] = HIDDEN_DISTRIBUTIONS
) -> Path:
    """A throwaway venv at `dest` on `base_python`'s interpreter that sees the base's packages
    but `hide`; returns its python. pip comes from the base (`python -m pip` installs here)."""
    base_site = site_packages(base_python)
    view = dest / "base-view"  # links to the base's site-packages entries, hidden ones left out
    view.mkdir(parents=True)
    for entry in sorted(os.listdir(base_site)):
        if not _hidden(entry, hide) and entry != "__pycache__":
            (view / entry).symlink_to(base_site / entry)
    venv = dest / "venv"
    _run(
        [base_python, "-m", "venv", "--without-pip", venv],
        f"making the notebook's overlay venv {venv}",
        "check that the base environment's Python has its venv module",
    )
    overlay_site = site_packages(venv / "bin" / "python")
    # addsitedir also runs the base's .pth files (editable installs, distutils shims).
    (overlay_site / "zz-birdclef-base.pth").write_text(
        f"import site; site.addsitedir({str(view)!r})\n"
    )
    return venv / "bin" / "python"


def builder_python() -> Path:
    """This builder's own interpreter (the rehearsal's base without --kaggle-image)."""
    return Path(sys.executable)


def python_minor(python: Path) -> str:
    """`python`'s major.minor, e.g. "3.12"."""
    ask = "import sys; print('%d.%d' % sys.version_info[:2])"
    done = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True)
    return done.stdout.strip()
