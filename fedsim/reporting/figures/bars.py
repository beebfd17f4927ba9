"""Bar layouts shared by several figures: bars stacked by phase, bars grouped by series."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fedsim.reporting import style
from fedsim.reporting.figures.canvas import Series

HATCHES = ("", "//", "..", "xx")


def stacked(ax: Any, labels: list[str], parts: dict[str, list[float]], scale: float,
            horizontal: bool = False, annotate: Callable[[float], str] | None = None) -> None:
    """One bar per label, stacked by energy phase; ``annotate`` writes each bar's total."""
    pos = np.arange(len(labels))
    base = np.zeros(len(labels))
    for phase in style.PHASES:
        vals = np.array(parts[phase]) * scale
        kw = {"color": style.PHASE_COLORS[phase], "label": style.PHASE_LABELS[phase],
              "edgecolor": "white", "linewidth": 0.5}
        if horizontal:
            ax.barh(pos, vals, left=base, height=0.62, **kw)
        else:
            ax.bar(pos, vals, bottom=base, width=0.62, **kw)
        base += vals
    if annotate:
        _annotate_totals(ax, pos, base, scale, horizontal, annotate)
    if horizontal:
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks(pos, labels)
        ax.grid(axis="x", visible=False)


def _annotate_totals(ax: Any, pos: np.ndarray, base: np.ndarray, scale: float,
                     horizontal: bool, annotate: Callable[[float], str]) -> None:
    """Write each bar's total past its end, and make room for the text on the value axis."""
    top = base.max() if len(base) else 0
    for p, v in zip(pos, base, strict=True):
        if horizontal:
            ax.text(v + top * 0.01, p, annotate(v / scale), va="center", fontsize=8)
        else:
            ax.text(p, v + top * 0.015, annotate(v / scale), ha="center", va="bottom",
                    fontsize=8)
    if horizontal:
        ax.set_xlim(0, top * 1.16 if top > 0 else 1)
    else:
        ax.set_ylim(0, top * 1.12 if top > 0 else 1)


def grouped_barh(ax: Any, pos: np.ndarray, i: int, n: int, values: Any, s: Series
                 ) -> tuple[np.ndarray, Any]:
    """Series ``i`` of ``n``'s bars, side by side within each row at ``pos``; returns the
    bars' centres and the bars.

    A series drawn with a dashed line (the same method a second time) gets a hatch too, so
    two entries of one colour stay apart in the bars as they do in the curves.
    """
    h = 0.8 / n
    ys = pos - 0.4 + h * (i + 0.5)
    bars = ax.barh(ys, values, height=h * 0.92, color=s.color,
                   hatch=HATCHES[i % 4] if s.linestyle != "-" else "",
                   edgecolor="white", linewidth=0.4, label=s.label)
    return ys, bars
