"""A progress bar for rounds: simulated time and accuracy on a terminal, silent otherwise."""

from __future__ import annotations

import sys
from typing import Any


class RoundProgress:
    def __init__(self, total: int, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="round", file=sys.stderr, dynamic_ncols=True)

    def update(self, rec: Any) -> None:
        if self._bar is None:
            return
        self._bar.set_postfix(
            sim=_fmt_time(rec.sim_time_s), acc=f"{rec.accuracy:.3f}",
            energy=f"{rec.energy_j / 1000:.1f}kJ", refresh=False,
        )
        self._bar.update(1)

    def skip(self, n: int) -> None:
        """Rounds already done (a resumed run)."""
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.2f}h"
