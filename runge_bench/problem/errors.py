"""The one exception type for mistakes a user can make (bad study file, missing store, ...)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits with status 2.

    The message names the file and, where there is one, the field: ``"studies/x.toml: grid.width:
    must be a positive integer, got 0"``.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        parts = [str(p) for p in (path, field) if p is not None]
        super().__init__(": ".join([*parts, message]))
