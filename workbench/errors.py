"""The error every workbench step raises for a problem the user must fix."""

from __future__ import annotations


class BuildError(RuntimeError):
    """A build or rehearsal problem the user must fix; the message names the file and the fix."""
