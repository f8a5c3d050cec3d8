"""Kaggle metadata (kernel-metadata.json, dataset-metadata.json) and the dataset folders.

The tables of kernels and datasets themselves are the user's: they live in build_kernels.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lib.models_dataset import TORCH_FILE_GLOB
from lib.paths import COMPETITION_SLUG
from workbench.errors import BuildError
from workbench.wheels import cached_wheels, copy_wheels, describe_wheels, fetch_wheels

MODEL_PATTERNS = ("*.onnx", TORCH_FILE_GLOB, "*.json", "classes*.txt", "classes*.csv")
METADATA_FILES = {"dataset-metadata.json", "kernel-metadata.json"}


# kernel-metadata.json's `machine_shape` for two T4 GPUs (the kaggle CLI's help: "GPU T4 x 2"),
# what the two-process training is built for. Without it the server picks (P100s were seen, and
# fail on the current image); `enable_gpu` alone is deprecated in kaggle 2.x.
MACHINE_SHAPE_T4X2 = "NvidiaTeslaT4"


# kernel-metadata.json's `docker_image_pinning_type` (kaggle 2.2.5 accepts these two). The
# submission notebook is re-run on the hidden test at scoring time: `original` keeps the image it
# was first run (and checked) with, so an image update in between (Python 3.12 -> 3.13: the
# a package the notebook relies on changes) cannot break the scored run. Its cost:
# the kernel stays on that image (no fixes), and a kernel first run long ago keeps an old one.
IMAGE_PINNING_TYPES = ("original", "latest")
DEFAULT_IMAGE_PINNING = "original"


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
    machine_shape: str | None = None  # e.g. MACHINE_SHAPE_T4X2; None: the server's default
    # Optional pre-training inputs, left out by --no-pretrain-sources (their rules must be
    # accepted on Kaggle, or the push drops them).
    pretrain_competitions: tuple[str, ...] = ()
    pretrain_datasets: tuple[str, ...] = ()  # other owners' datasets, "owner/slug"
    resumable: bool = False  # --resume attaches this kernel's own output


@dataclass(frozen=True)
class KernelOptions:
    """The build's metadata choices (command-line options), the same for every kernel."""

    resume: bool = False  # attach a resumable kernel's own earlier output
    pretrain_sources: bool = True  # attach the optional pre-training sources
    public: bool = False  # is_private false
    image_pinning: str = DEFAULT_IMAGE_PINNING  # docker_image_pinning_type, IMAGE_PINNING_TYPES

    def __post_init__(self):
        if self.image_pinning not in IMAGE_PINNING_TYPES:
            raise BuildError(
                f"--image-pinning {self.image_pinning!r}: kaggle accepts {IMAGE_PINNING_TYPES}"
            )


@dataclass(frozen=True)
class DatasetSpec:
    slug: str  # 6-50 characters
    title: str  # 6-50 characters


def kernel_metadata(
    name: str,
    spec: KernelSpec,
    owner: str,
    datasets: dict,
    options: KernelOptions | None = None,
) -> dict:
    """kernel-metadata.json for `kaggle kernels push -p build/<name>`; `datasets` is the table
    the keys in `spec.datasets` refer to; `options` the build's choices (default: none)."""
    options = options or KernelOptions()
    competitions = list(spec.competitions)
    public = list(spec.public_datasets)
    if options.pretrain_sources:
        competitions += [c for c in spec.pretrain_competitions if c not in competitions]
        public += [d for d in spec.pretrain_datasets if d not in public]
    kernels = list(spec.kernels)
    if options.resume and spec.resumable and spec.slug not in kernels:
        kernels.append(spec.slug)
    meta = {
        "id": f"{owner}/{spec.slug}",
        "title": spec.title,
        "code_file": f"{name}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": not options.public,
        "enable_gpu": spec.enable_gpu,
        "enable_tpu": False,
        "enable_internet": spec.enable_internet,
        "dataset_sources": [f"{owner}/{datasets[key].slug}" for key in spec.datasets] + public,
        "competition_sources": competitions,
        "kernel_sources": [f"{owner}/{slug}" for slug in kernels],
        "model_sources": [],
        "docker_image_pinning_type": options.image_pinning,
    }
    if spec.machine_shape:
        meta["machine_shape"] = spec.machine_shape
    return meta


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


def write_datasets(
    out: Path,
    owner: str,
    datasets: dict,
    *,
    models_from: Path | None = None,
    fetch: bool = False,
    wheel_cache: Path,
) -> None:
    """Every dataset folder's metadata; the models from `models_from` when given; the wheels
    when cached, or fetched first when `fetch`."""
    for key, spec in datasets.items():
        folder = out / key
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "dataset-metadata.json", dataset_metadata(spec, owner))
    if "models" in datasets and models_from:
        copied = copy_models(Path(models_from), out / "models")
        print(f"models: {len(copied)} files from {models_from} -> {out / 'models'}")
    if "wheels" in datasets:
        wheels = fetch_wheels(wheel_cache) if fetch else cached_wheels(wheel_cache)
        if wheels:
            copy_wheels(wheels, out / "wheels")
            print(f"wheels: {describe_wheels(wheels)} -> {out / 'wheels'}")
        else:
            print(
                f"wheels: not in {wheel_cache}; run with --wheels once (needs network) to fetch "
                "them"
            )
