"""workbench/owner.py: whose ids the build writes, and the placeholder with instructions."""

from __future__ import annotations

import json

import pytest
from workbench_support import PLACEHOLDER_KERNEL, build_into, write

from workbench.errors import BuildError
from workbench.owner import OWNER_PLACEHOLDER, resolve_owner


def test_owner_resolution_order(tmp_path):
    home = tmp_path / "home"
    write(home / ".config" / "kaggle" / "kaggle.json", json.dumps({"username": "xdg", "key": "k"}))
    assert resolve_owner(None, {}, home)[0] == "xdg"
    write(home / ".kaggle" / "kaggle.json", json.dumps({"username": "dotkaggle", "key": "k"}))
    assert resolve_owner(None, {}, home)[0] == "dotkaggle"
    config_dir = tmp_path / "cfg"
    write(config_dir / "kaggle.json", json.dumps({"username": "configdir"}))
    env = {"KAGGLE_CONFIG_DIR": str(config_dir)}
    assert resolve_owner(None, env, home) == ("configdir", str(config_dir / "kaggle.json"))
    env["KAGGLE_USERNAME"] = "envuser"
    assert resolve_owner(None, env, home) == ("envuser", "$KAGGLE_USERNAME")
    assert resolve_owner("cli", env, home) == ("cli", "--owner")
    assert resolve_owner(None, {}, tmp_path / "nobody") == (None, "nowhere")


def test_broken_kaggle_json_names_the_file(tmp_path):
    write(tmp_path / ".kaggle" / "kaggle.json", "{not json")
    with pytest.raises(BuildError, match="kaggle.json"):
        resolve_owner(None, {}, tmp_path)


def test_no_owner_builds_with_placeholder_and_explains(tmp_path, capsys):
    write(tmp_path / "kernels" / "infer.py", PLACEHOLDER_KERNEL)
    build_into(tmp_path, kernels_dir=tmp_path / "kernels", environ={}, home=tmp_path / "nobody")
    meta = json.loads((tmp_path / "build" / "infer" / "kernel-metadata.json").read_text())
    assert meta["id"].startswith(OWNER_PLACEHOLDER + "/")
    out = capsys.readouterr().out
    assert "kernel-metadata.json: id" in out and "dataset-metadata.json: id" in out
    assert "kernel-metadata.json: dataset/kernel_sources" in out  # infer reads the datasets
    assert "--owner" in out and "KAGGLE_USERNAME" in out
