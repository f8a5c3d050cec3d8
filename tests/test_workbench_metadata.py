"""workbench/metadata.py: kernel-metadata.json, dataset-metadata.json, the models dataset."""

from __future__ import annotations

import json

import nbformat
import pytest
from workbench_support import build_real_table, read_nb, write

import build_kernels as bk
from lib.paths import MODELS_DATASET_SLUG, WHEELS_DATASET_SLUG
from workbench.errors import BuildError
from workbench.metadata import DatasetSpec, KernelSpec, check_tables, copy_models, export_folder


def test_kernel_metadata_per_kernel(tmp_path):
    from slugify import slugify  # installed with kaggle; the CLI checks titles with it

    folders, out = build_real_table(tmp_path)
    assert set(folders) == {"train", "infer"}
    for name, spec in bk.KERNELS.items():
        meta = json.loads((out / name / "kernel-metadata.json").read_text())
        assert meta["id"] == f"someone/{spec.slug}" and len(spec.slug) >= 5
        assert len(meta["title"]) >= 5 and slugify(meta["title"]) == spec.slug
        assert (out / name / meta["code_file"]).is_file()
        assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
        assert meta["is_private"] is True
        assert meta["competition_sources"][0] == "birdclef-2023"
        nbformat.validate(read_nb(out / name / meta["code_file"]))
    train = json.loads((out / "train" / "kernel-metadata.json").read_text())
    infer = json.loads((out / "infer" / "kernel-metadata.json").read_text())
    assert train["enable_gpu"] is True and train["enable_internet"] is True
    assert infer["enable_gpu"] is False and infer["enable_internet"] is False
    assert sorted(infer["dataset_sources"]) == sorted(
        [f"someone/{MODELS_DATASET_SLUG}", f"someone/{WHEELS_DATASET_SLUG}"]
    )
    assert infer["competition_sources"] == ["birdclef-2023"]  # scoring attaches only that
    # training also reads the recipe's pre-training sources (optional inside the notebook)
    assert set(train["competition_sources"]) == {
        "birdclef-2023", "birdsong-recognition", "birdclef-2021", "birdclef-2022"
    }  # fmt: skip
    assert all(d.startswith("rohanrao/xeno-canto") for d in train["dataset_sources"])


def test_dataset_folders_and_metadata(tmp_path):
    from slugify import slugify

    _, out = build_real_table(tmp_path)
    for key, spec in bk.DATASETS.items():
        meta = json.loads((out / key / "dataset-metadata.json").read_text())
        assert meta == {
            "id": f"someone/{spec.slug}",
            "title": spec.title,
            "licenses": [{"name": "CC0-1.0"}],
        }
        assert 6 <= len(meta["title"]) <= 50 and 6 <= len(spec.slug) <= 50
        assert slugify(spec.title) == spec.slug


@pytest.mark.parametrize(
    ("kernels", "datasets", "message"),
    [
        ({}, {"m": DatasetSpec("short", "A long enough title")}, r"DATASETS\['m'\]\.slug"),
        ({"k": KernelSpec("kern", "Kernel", False, False)}, {}, "at least 5 characters"),
        (
            {"k": KernelSpec("kernel", "Kernel", False, False, datasets=("nope",))},
            {},
            r"reads unknown datasets \['nope'\]",
        ),
    ],
)
def test_tables_outside_kaggles_limits_fail(kernels, datasets, message):
    with pytest.raises(BuildError, match=message):
        check_tables(kernels, datasets)


def test_models_from_copies_exports_only(tmp_path):
    run = tmp_path / "run"
    for name in ("fold0.onnx", "fold1.onnx", "config.json", "classes.txt", "model.pt", "log.csv"):
        write(run / name, name)
    write(tmp_path / "build" / "models" / "stale.onnx", "old")
    _, out = build_real_table(tmp_path, models_from=run)
    files = sorted(p.name for p in (out / "models").iterdir())
    assert files == [
        "classes.txt",
        "config.json",
        "dataset-metadata.json",
        "fold0.onnx",
        "fold1.onnx",
    ]


def test_models_from_finds_the_export_subfolder(tmp_path):
    run = tmp_path / "run"
    for name in ("fold0/best.pt", "fold0/history.json", "models/fold0.onnx", "models/classes.json"):
        write(run / name, name)
    assert export_folder(run) == run / "models"
    copied = copy_models(run, tmp_path / "dataset")
    assert sorted(p.name for p in copied) == ["classes.json", "fold0.onnx"]


@pytest.mark.parametrize("onnx", [[], ["a/fold0.onnx", "b/fold0.onnx"]])
def test_models_from_without_one_export_folder_fails(tmp_path, onnx):
    for name in ["fold0/best.pt", *onnx]:
        write(tmp_path / "run" / name, "x")
    with pytest.raises(BuildError, match=r"need one folder of exported \*\.onnx"):
        build_real_table(tmp_path, models_from=tmp_path / "run")
