"""What ``fedsim verify`` hands back and how it phrases and compares numbers.

Every check goes through :class:`Checker`, so a clean report can still say how much was
checked (``ok: N checks``), and a broken run gets its violations numbered in the order they
were found. The tolerances live here, once, so every float read back from a file is allowed
the same rounding the writer applied to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REL_TOL = 1e-6
ABS_TOL_J = 1e-9  # CSV floats are rounded to 1e-10
ABS_TOL_S = 1e-8  # event times are rounded to 1e-9


@dataclass(frozen=True)
class Violation:
    """One broken invariant, phrased with the round/client and the numbers that disagree."""

    message: str
    round: int | None = None
    client: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class VerifyReport:
    """The outcome of one ``verify_run``: counts say what was covered, even when all is ok."""

    path: Path
    checks: int = 0
    rounds: int = 0
    client_rounds: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary_line(self) -> str:
        return (f"ok: {self.checks} checks on {self.rounds} rounds, "
                f"{self.client_rounds} client-rounds")

    def render(self, limit: int = 200) -> str:
        notes = [f"note: {n}" for n in self.notes]
        if self.ok:
            return "\n".join([self.summary_line(), *notes])
        n = len(self.violations)
        lines = [f"{self.path}: {n} violation{'s' if n != 1 else ''} "
                 f"({self.checks} checks on {self.rounds} rounds, "
                 f"{self.client_rounds} client-rounds):"]
        width = len(str(min(n, limit)))
        for i, v in enumerate(self.violations[:limit], 1):
            lines.append(f"{i:>{width}}. {v}")
        if n > limit:
            lines.append(f"... and {n - limit} more")
        return "\n".join([*lines, *notes])


class Checker:
    """Counts every check and records the failed ones, so no check can skip the count."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report

    def check(self, ok: bool, message: str, round: int | None = None,
              client: int | None = None) -> bool:
        self.report.checks += 1
        if not ok:
            self.report.violations.append(Violation(message, round, client))
        return ok


def close(a: float, b: float, abs_tol: float = ABS_TOL_J) -> bool:
    """Equal up to the writer's rounding (energies by default; pass ABS_TOL_S for times)."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=abs_tol)


def show(x: float) -> str:
    """A number for a message: 12 significant digits, or as it came if it is no number."""
    try:
        return f"{x:.12g}"
    except (OverflowError, TypeError, ValueError):
        return str(x)


def where(r: int, c: int) -> str:
    return f"round {r} client {c}"


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (bools, text, ints beyond float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def ids(value: Any) -> list[int] | None:
    """A JSON list of client ids, sorted; None if it is not one."""
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return sorted(value)
