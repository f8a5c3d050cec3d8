"""Whose Kaggle account the built ids name: --owner, $KAGGLE_USERNAME, kaggle.json, or a
placeholder with instructions (a plain build needs no credentials)."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.errors import BuildError

OWNER_PLACEHOLDER = "YOUR_KAGGLE_USERNAME"


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


def owner_help(fields: list[str]) -> str:
    """What holds the placeholder, and the three ways to name the owner."""
    listing = "\n".join(f"  - {field}" for field in fields)
    return (
        f"No Kaggle username found: these fields hold the placeholder {OWNER_PLACEHOLDER!r}:\n"
        f"{listing}\nFix: rebuild with --owner NAME, or `export KAGGLE_USERNAME=NAME`, or put "
        f"your kaggle.json in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR)."
    )


def placeholder_fields(out: Path, kernel_names, dataset_keys) -> list[str]:
    """The metadata fields of a build in `out` that name the owner."""
    fields = []
    for name in kernel_names:
        meta = json.loads((out / name / "kernel-metadata.json").read_text())
        fields.append(f"{out / name / 'kernel-metadata.json'}: id")
        if meta["dataset_sources"] or meta["kernel_sources"]:
            fields.append(f"{out / name / 'kernel-metadata.json'}: dataset/kernel_sources")
    fields += [f"{out / key / 'dataset-metadata.json'}: id" for key in dataset_keys]
    return fields
