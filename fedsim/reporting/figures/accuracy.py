"""Test accuracy against simulated time, cumulative fleet energy or round."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting.figures.canvas import Series, empty, new_figure, pct_axis, styled

X_LABELS = {
    "sim_time_s": "Simulated wall-clock time",
    "energy_j": "Cumulative fleet energy",
    "round": "Round",
}


def _x_scale(kind: str, max_x: float) -> tuple[float, str]:
    if kind == "sim_time_s":
        return style.time_unit(max_x)
    if kind == "energy_j":
        return style.energy_unit(max_x)
    return 1.0, ""


def _draw_run(ax: Any, s: Series, curve: tuple[np.ndarray, np.ndarray], x: str, f: float,
              mark_best: bool) -> None:
    """One run's curve; a star on its best round when asked.

    Against time or energy the curve starts at the origin (the run started at 0 s, 0 J,
    before any accuracy was measured), with no marker there.
    """
    xs, ys = curve
    n = len(xs)
    every = max(1, n // 25)
    ax.plot(np.concatenate([[0.0], xs * f]) if x != "round" else xs,
            np.concatenate([[np.nan], ys * 100]) if x != "round" else ys * 100,
            color=s.color, linestyle=s.linestyle, marker=s.marker,
            markevery=(1, every) if x != "round" else every,
            label=s.label, zorder=3)
    if mark_best and n:
        i = int(np.argmax(ys))
        best_round = metrics.accuracy_curve(s.runs[0], "round")[0][i]
        ax.plot(xs[i] * f, ys[i] * 100, marker="*", markersize=13, color=s.color,
                markeredgecolor="black", markeredgewidth=0.6, linestyle="none",
                zorder=4, label=f"best: {100 * ys[i]:.2f} % (round {best_round:g})")


def _draw_seeds(ax: Any, s: Series, curves: list[tuple[np.ndarray, np.ndarray]],
                f: float) -> None:
    """A seed group: each seed faint, then the mean and a ± one sd band over the x range
    every seed covers (none when the seeds share no range)."""
    b = metrics.band(curves)
    for xs, ys in curves:
        ax.plot(xs * f, ys * 100, color=s.color, linewidth=0.6, alpha=0.35, zorder=2)
    if b is not None:
        grid, mean, sd = b
        ax.plot(grid * f, mean * 100, color=s.color, linestyle=s.linestyle,
                label=f"{s.label} (mean of {len(curves)} seeds)", zorder=3)
        ax.fill_between(grid * f, (mean - sd) * 100, (mean + sd) * 100,
                        color=s.color, alpha=0.18, linewidth=0, zorder=1)


@styled
def accuracy_curves(series: Sequence[Series], x: str, *, title: str,
                    mark_best: bool = False, width: float = style.WIDE,
                    height: float = 3.6) -> Any:
    """Test accuracy (%) against simulated time, cumulative energy or round."""
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    curves = {s.label: [metrics.accuracy_curve(r, x) for r in s.runs] for s in series}
    all_x = [c[0] for cs in curves.values() for c in cs if len(c[0])]
    if not all_x:
        empty(ax, "no completed rounds: nothing to plot")
        ax.set_title(title, loc="left")
        return fig
    max_x = max(float(v.max()) for v in all_x)
    f, unit = _x_scale(x, max_x)
    for s in series:
        cs = curves[s.label]
        if len(cs) == 1:
            _draw_run(ax, s, cs[0], x, f, mark_best)
        else:
            _draw_seeds(ax, s, cs, f)
    label = X_LABELS[x] + (f" ({unit})" if unit else "")
    ax.set_xlabel(label)
    ax.set_ylabel("Test accuracy (%)")
    ax.set_xlim(left=0 if x != "round" else None)
    pct_axis(ax)
    ax.set_title(title, loc="left")
    if len(series) > 1 or mark_best:
        ax.legend(loc="lower right")
    return fig
