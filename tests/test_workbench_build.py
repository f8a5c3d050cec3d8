"""workbench/build.py: the whole build, pinned by golden files and rebuilt byte for byte.

Golden files: tests/golden/expected/ pins what a build of the fixture in tests/golden/fixture/
writes. After an intended change to the builder, regenerate and review the diff:

    BIRDCLEF_REGEN_GOLDEN=1 pytest tests/test_workbench_build.py -k golden
    git diff tests/golden/
"""

from __future__ import annotations

import os
import shutil

import nbformat
import pytest
from workbench_support import (
    DEMO_DATASETS,
    DEMO_TABLE,
    GOLDEN,
    PLACEHOLDER_KERNEL,
    REPO,
    build_demo,
    build_into,
    read_nb,
    tree_bytes,
    write,
)

from workbench.build import build_competition
from workbench.errors import BuildError
from workbench.inline import lib_imports_left
from workbench.metadata import KernelSpec


def test_rebuild_is_byte_identical(tmp_path):
    first = tree_bytes(build_demo(tmp_path, "a"))
    second = tree_bytes(build_demo(tmp_path, "b"))
    assert first == second and "demo/demo.ipynb" in first


def test_golden_build(tmp_path):
    """What a build of the fixture writes, pinned (see the module docstring to regenerate)."""
    built = tree_bytes(build_demo(tmp_path))
    expected_dir = GOLDEN / "expected"
    if os.environ.get("BIRDCLEF_REGEN_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for name, data in built.items():
            (expected_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / name).write_bytes(data)
    expected = tree_bytes(expected_dir)
    assert sorted(built) == sorted(expected)
    for name in built:
        assert built[name] == expected[name], f"{name} differs from tests/golden/expected/{name}"


def test_unknown_kernel_source_fails(tmp_path):
    write(tmp_path / "kernels" / "extra.py", "# %%\nprint(1)\n")
    with pytest.raises(BuildError, match="no KERNELS entry for \\['extra'\\]"):
        build_into(tmp_path, kernels_dir=tmp_path / "kernels")


def test_missing_kernels_folder_names_the_option(tmp_path):
    with pytest.raises(BuildError, match="kernels folder not found; pass --kernels-dir"):
        build_into(tmp_path, kernels_dir=tmp_path / "nope")


def test_a_kernel_in_the_table_without_source_is_reported(tmp_path, capsys):
    table = {"demo": KernelSpec("demo-kernel-fixture", "Demo Kernel Fixture", False, False)}
    (tmp_path / "kernels").mkdir()
    assert build_into(tmp_path, kernels=table, kernels_dir=tmp_path / "kernels", owner="me") == {}
    assert "kernels not built (no source in" in capsys.readouterr().out


REAL_KERNELS = sorted(p.stem for p in (REPO / "kernels").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.skipif(not REAL_KERNELS, reason="kernels/ holds no sources yet")
def test_real_kernels_build_self_contained(tmp_path):
    folders = build_into(tmp_path, owner="someone")
    assert sorted(folders) == REAL_KERNELS
    for name, folder in folders.items():
        nb = read_nb(folder / f"{name}.ipynb")
        nbformat.validate(nb)
        assert lib_imports_left(nb) == []
        assert "workbench" not in "".join(c.source for c in nb.cells if c.cell_type == "code")
    again = build_into(tmp_path, "again", owner="someone")
    for name in folders:
        assert (folders[name] / f"{name}.ipynb").read_bytes() == (
            again[name] / f"{name}.ipynb"
        ).read_bytes()


def test_a_competition_build_needs_the_settings_line(tmp_path):
    """--competition writes the notebook's `COMPETITION = "..."` line; a kernel without one
    cannot follow it, so the build fails naming the kernel and the fix."""
    kernels = tmp_path / "kernels"
    write(kernels / "demo.py", PLACEHOLDER_KERNEL)
    with pytest.raises(BuildError, match=r"demo\.py: 0 settings lines `COMPETITION"):
        build_into(tmp_path, kernels=DEMO_TABLE, datasets=DEMO_DATASETS, kernels_dir=kernels,
                   owner="me", competition="birdclef-2024")  # fmt: skip
    write(
        kernels / "demo.py",
        '# %%\nCOMPETITION = "birdclef-2023"  # the year\n' + PLACEHOLDER_KERNEL,
    )
    folders = build_into(tmp_path, kernels=DEMO_TABLE, datasets=DEMO_DATASETS,
                         kernels_dir=kernels, owner="me", competition="birdclef-2024")  # fmt: skip
    text = (folders["demo"] / "demo.ipynb").read_text()
    assert 'COMPETITION = \\"birdclef-2024\\"  # the year' in text and "birdclef-2023" not in text
    assert build_competition(tmp_path / "build") == "birdclef-2024"
    assert build_competition(tmp_path / "nowhere") == "birdclef-2023"  # builds before build.json
