"""Whose Kaggle account the built ids name: --owner, $KAGGLE_USERNAME, kaggle.json, then (for
the commands that talk to Kaggle) the API's answer for an access token; a plain build with none
of these writes a placeholder and says how to fix it (it needs no credentials)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from workbench.errors import BuildError

OWNER_PLACEHOLDER = "YOUR_KAGGLE_USERNAME"


def kaggle_json_paths(environ, home: Path) -> list[Path]:
    """Where the kaggle 2.2.5 client looks for kaggle.json, in its order."""
    if environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"]
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [home / ".kaggle" / "kaggle.json", xdg / "kaggle" / "kaggle.json"]


def token_source(environ, home: Path) -> str | None:
    """Where kaggle 2.x finds an access token ($KAGGLE_API_TOKEN, ~/.kaggle/access_token, or
    `kaggle auth login`'s ~/.kaggle/credentials.json), if anywhere. Nothing is read from it:
    the API is asked whose it is."""
    if environ.get("KAGGLE_API_TOKEN"):
        return "$KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt", "credentials.json"):  # the last: OAuth
        path = home / ".kaggle" / name
        if path.is_file() and path.stat().st_size > 0:
            return str(path)
    return None


def resolve_owner(
    cli_owner, environ, home: Path, whoami: Callable[[], str | None] | None = None
) -> tuple[str | None, str]:
    """(owner, where it came from): --owner, then $KAGGLE_USERNAME, then kaggle.json's username,
    then, with an access token and `whoami` (only commands that talk to Kaggle pass one), the
    API's own answer for that token. (None, "nowhere") when none applies.

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
    source = token_source(environ, home)
    if source and whoami is not None:
        username = whoami()
        if username:
            return username, f"Kaggle's answer for the access token in {source}"
    return None, "nowhere"


def owner_help(fields: list[str]) -> str:
    """What holds the placeholder, and the three ways to name the owner."""
    listing = "\n".join(f"  - {field}" for field in fields)
    return (
        f"No Kaggle username found: these fields hold the placeholder {OWNER_PLACEHOLDER!r}:\n"
        f"{listing}\nFix: rebuild with --owner NAME, or `export KAGGLE_USERNAME=NAME`, or put "
        f"your kaggle.json in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR). With an access token only, "
        f"`python build_kernels.py push ...` asks Kaggle who you are and fills the owner in."
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
