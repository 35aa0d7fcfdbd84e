"""The one exception type for mistakes a user can make (bad study file, missing store, ...)."""

from __future__ import annotations

import re
from pathlib import Path

LONGEST_WORD = 120  # characters: a user's value longer than this is shortened in an error line
_LONG = re.compile(rf"[^\s:,;/]{{{LONGEST_WORD},}}")  # a path is cut at its slashes, never shortened


def _shortened(text: str) -> str:
    """text with every run of over LONGEST_WORD characters without a space or separator (a user's
    100,000-character formula, echoed) cut to its start and end, saying how long it was."""
    return _LONG.sub(lambda m: f"{m[0][:60]}...({len(m[0])} characters)...{m[0][-20:]}", text)


class UserError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits with status 2.

    The message names the file and, where there is one, the field: ``"studies/x.toml: grid.width:
    must be a positive integer, got 0"``.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        parts = [str(p) for p in (path, field) if p is not None]
        super().__init__(_shortened(": ".join([*parts, message])))
