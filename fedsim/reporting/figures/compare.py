"""Figures of a comparison: several runs (or seed groups) on shared axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting.figures.bars import grouped_barh, stacked
from fedsim.reporting.figures.canvas import Series, empty, new_figure, styled
from fedsim.reporting.run import OK


def _classes(series: Sequence[Series]) -> list[str]:
    """Device classes of all compared runs, in order of first appearance."""
    classes: list[str] = []
    for s in series:
        for r in s.runs:
            for k in r.device_classes:
                if k not in classes:
                    classes.append(k)
    return classes


def _fleet_energy(ax: Any, series: Sequence[Series]) -> None:
    """(a): each entry's fleet energy split by phase (the mean over a group's seeds)."""
    labels = [s.label for s in series]
    parts: dict[str, list[float]] = {p: [] for p in style.PHASES}
    for s in series:
        stats = [metrics.class_stats(r) for r in s.runs]
        for p in style.PHASES:
            parts[p].append(float(np.mean([sum(st.energy[p] for st in sts) for sts in stats])))
    total_max = max((sum(parts[p][i] for p in style.PHASES) for i in range(len(series))),
                    default=0.0)
    f, u = style.energy_unit(total_max)
    stacked(ax, labels, parts, f, horizontal=True, annotate=style.fmt_energy)
    ax.set_xlabel(f"Fleet energy ({u})")
    ax.set_title("(a) Fleet energy by phase", loc="left")
    for tick, s in zip(ax.get_yticklabels(), series, strict=True):
        tick.set_color(s.color)


def _per_round_energy(series: Sequence[Series], classes: list[str]) -> np.ndarray:
    """Entries x classes: mean energy of one selected client-round, NaN where a class never
    took part in an entry's runs."""
    per = np.full((len(series), len(classes)), np.nan)
    for i, s in enumerate(series):
        vals: dict[str, list[float]] = {}
        for r in s.runs:
            for st in metrics.class_stats(r):
                if st.client_rounds:
                    vals.setdefault(st.device_class, []).append(st.energy_j / st.client_rounds)
        for j, k in enumerate(classes):
            if k in vals:
                per[i, j] = float(np.mean(vals[k]))
    return per


def _class_energy(ax: Any, series: Sequence[Series], classes: list[str],
                  per: np.ndarray) -> None:
    """(b): grouped bars, class on y and one bar per entry; a log axis when classes differ
    by more than 30x (an MCU beside a laptop), else the small bars would vanish."""
    from matplotlib.transforms import blended_transform_factory

    f2, u2 = style.energy_unit(float(np.nanmax(per)))
    pos_vals = per[np.isfinite(per) & (per > 0)]
    log = len(pos_vals) > 1 and pos_vals.max() / pos_vals.min() > 30
    pos = np.arange(len(classes))
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for i, s in enumerate(series):
        ys, _ = grouped_barh(ax, pos, i, len(series), np.nan_to_num(per[i]) * f2, s)
        for y, v in zip(ys, per[i], strict=True):
            if not v > 0:  # say so rather than leave a gap a reader could miss
                ax.text(0.01, y, "0 J" if v == 0 else "not in this run", va="center",
                        fontsize=7, color=s.color, transform=trans)
    ax.set_yticks(pos, [style.class_name(k) for k in classes])
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"Mean energy per selected client-round ({u2}"
                  + (", log scale)" if log else ")"))
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, len(series)),
              fontsize=7.5)


@styled
def compare_energy(series: Sequence[Series]) -> Any:
    """(a) fleet energy per run split by phase; (b) mean energy per client-round per class."""
    fig = new_figure(style.WIDE, 1.9 + 0.5 * max(3, len(series)))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.15])
    _fleet_energy(ax1, series)
    handles, labs = ax1.get_legend_handles_labels()
    classes = _classes(series)
    per = _per_round_energy(series, classes)
    if classes and np.isfinite(per).any():
        _class_energy(ax2, series, classes, per)
    else:
        empty(ax2, "no client-rounds recorded")
    ax2.set_title("(b) Per device class", loc="left")
    ax1.legend(handles, labs, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
               fontsize=7.5)
    return fig


def _participation(s: Series, classes: list[str]) -> list[float]:
    """Per class, the percentage of an entry's selected client-rounds that were aggregated
    (pooled over a group's seeds); NaN for a class the entry never selected."""
    vals = []
    for k in classes:
        ok = sel = 0
        for r in s.runs:
            c = r.clients
            mine = c["device_class"] == k
            sel += int(np.count_nonzero(mine))
            ok += int(np.count_nonzero(mine & (c["status"] == OK)))
        vals.append(100 * ok / sel if sel else np.nan)
    return vals


@styled
def compare_participation(series: Sequence[Series]) -> Any:
    classes = _classes(series)
    fig = new_figure(style.WIDE, 1.6 + 0.45 * max(3, len(classes)))
    ax = fig.add_subplot()
    if not classes:
        empty(ax, "no client-rounds recorded")
        return fig
    pos = np.arange(len(classes))
    for i, s in enumerate(series):
        vals = _participation(s, classes)
        _, bars = grouped_barh(ax, pos, i, len(series), vals, s)
        for b, v in zip(bars, vals, strict=True):
            if math.isfinite(v):
                ax.text(v + 0.6, b.get_y() + b.get_height() / 2, f"{v:.0f}%", va="center",
                        fontsize=7.5)
    ax.set_yticks(pos, [style.class_name(k) for k in classes])
    ax.invert_yaxis()
    ax.set_xlim(0, 108)
    ax.set_xlabel("Participation: aggregated / selected client-rounds (%)")
    ax.grid(axis="y", visible=False)
    ax.set_title("Participation per device class", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=8)
    return fig


@styled
def compare_bits(series: Sequence[Series]) -> Any:
    from matplotlib.lines import Line2D

    fig = new_figure(style.WIDE, 3.3)
    ax = fig.add_subplot()
    for s in series:
        for k, r in enumerate(s.runs):
            rd, vd = metrics.mean_bits_per_round(r, "avg_bits")
            ru, vu = metrics.mean_bits_per_round(r, "avg_bits_up")
            lab = s.label if k == 0 else None
            ax.plot(rd, vd, color=s.color, linestyle="-", label=lab,
                    linewidth=1.8 if len(s.runs) == 1 else 0.9)
            ax.plot(ru, vu, color=s.color, linestyle="--",
                    linewidth=1.4 if len(s.runs) == 1 else 0.7)
    ax.set_xlabel("Round")
    ax.set_ylabel("Mean bits per weight")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Average bit-width over rounds", loc="left")
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="#555555", linestyle="-"),
                Line2D([], [], color="#555555", linestyle="--")]
    labels += ["sent by the server", "reported by clients"]
    ax.legend(handles, labels, loc="best", fontsize=7.5)
    return fig
