"""Helpers shared by the tests of build_kernels.py and workbench/: fixture paths, writing
files, building into a temporary folder (never the user's build/, cache or rehearsal folders)."""

from __future__ import annotations

from pathlib import Path

import nbformat

import build_kernels as bk  # importable: tests/conftest.py puts the repository on sys.path
from workbench.build import build
from workbench.metadata import DatasetSpec, KernelSpec

REPO = bk.REPO
GOLDEN = REPO / "tests" / "golden"
FIXTURE_LIB = GOLDEN / "fixture" / "lib"
FIXTURE_KERNELS = GOLDEN / "fixture" / "kernels"
DEMO_TABLE = {"demo": KernelSpec("demo-kernel-fixture", "Demo Kernel Fixture", False, False)}
DEMO_DATASETS = {"models": DatasetSpec("demo-models-fixture", "Demo Models Fixture")}
PLACEHOLDER_KERNEL = "# %%\nfrom lib.config import Config\n\nprint(Config().n_mels)\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build_into(tmp_path: Path, out: str = "build", **options) -> dict[str, Path]:
    """build() into tmp_path/out with the real tables, kernels and lib unless `options` say."""
    settings = {
        "kernels": bk.KERNELS,
        "datasets": bk.DATASETS,
        "kernels_dir": REPO / "kernels",
        "lib_dir": REPO / "lib",
        "out": tmp_path / out,
        "wheel_cache": tmp_path / "cache",
        **options,
    }
    return build(**settings)


def build_demo(tmp_path: Path, out: str = "build") -> Path:
    """Build the golden fixture (tests/golden/fixture) as owner golden-owner; the out folder."""
    build_into(
        tmp_path, out, kernels=DEMO_TABLE, datasets=DEMO_DATASETS, kernels_dir=FIXTURE_KERNELS,
        lib_dir=FIXTURE_LIB, owner="golden-owner",
    )  # fmt: skip
    return tmp_path / out


def build_real_table(tmp_path: Path, **options) -> tuple[dict[str, Path], Path]:
    """Placeholder train/infer sources built with the real KERNELS and DATASETS tables."""
    kernels = tmp_path / "kernels"
    for name in bk.KERNELS:
        write(kernels / f"{name}.py", PLACEHOLDER_KERNEL)
    options = {"owner": "someone", **options}
    return build_into(tmp_path, kernels_dir=kernels, **options), tmp_path / "build"


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
