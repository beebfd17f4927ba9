"""User-facing errors.

Every problem with user input (scenario, profile, CLI flag, data folder) becomes an
:class:`InputError` that names the file, the key path and what was expected. The CLI prints
its message and exits with status 2; it never shows a traceback for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def format_key_path(parts: Sequence[str | int]) -> str:
    """Render ``("fleet", 0, "count")`` as ``fleet[0].count``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


class FedsimError(Exception):
    """Base class of fedsim's own errors."""


class InputError(FedsimError):
    """Bad user input: carries the file and key path so the message can name them."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        key: str | Sequence[str | int] | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        if key is not None and not isinstance(key, str):
            key = format_key_path(key)
        self.key = key or None
        self.detail = message
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.key:
            where.append(f"key '{self.key}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.detail}" if prefix else self.detail


class RunError(FedsimError):
    """A run could not complete for a reason that is not a bug (e.g. a worker kept failing)."""
