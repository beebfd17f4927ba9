"""The sweep page: accuracy against energy and against simulated time with the Pareto front
marked, every cell's accuracy curve (mean and seed band), and the table of cells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedsim.reporting import page as pg
from fedsim.reporting import style
from fedsim.reporting.figures import Series, accuracy_curves
from fedsim.reporting.figures.canvas import new_figure, styled
from fedsim.reporting.output import prepare_output, write_outputs
from fedsim.reporting.run import load_run
from fedsim.sweep.summary import CellStats

PALETTE = ("#0077BB", "#EE7733", "#009988", "#CC3311", "#33BBEE", "#EE3377", "#BBBBBB",
           "#332288", "#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#6699CC")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@styled
def pareto_figure(stats: Sequence[CellStats], cost: str, flag: str, title: str) -> Any:
    """Each cell at (mean cost, mean final accuracy) with std bars; the front as a line."""
    fig = new_figure(style.WIDE, 4.2)
    ax = fig.add_subplot()
    pts = [s for s in stats if not (math.isnan(s.mean[cost])
                                    or math.isnan(s.mean["final_accuracy"]))]
    if not pts:
        ax.text(0.5, 0.5, "no cell recorded an accuracy (system-only?): nothing to rank",
                ha="center", va="center", transform=ax.transAxes)
        return fig
    scale, unit = (style.energy_unit if cost == "energy_j" else style.time_unit)(
        max(s.mean[cost] for s in pts))
    for s in pts:
        on = getattr(s, flag)
        ax.errorbar(s.mean[cost] / scale, 100 * s.mean["final_accuracy"],
                    xerr=s.std[cost] / scale, yerr=100 * s.std["final_accuracy"],
                    fmt="*" if on else "o", ms=13 if on else 7, color=color(s.cell.index),
                    mec="black" if on else color(s.cell.index), capsize=3,
                    label=f"{s.cell.name}: {s.cell.label}")
    front = sorted((s for s in pts if getattr(s, flag)), key=lambda s: s.mean[cost])
    ax.plot([s.mean[cost] / scale for s in front],
            [100 * s.mean["final_accuracy"] for s in front], "--", color="black", lw=1.2,
            label="Pareto front", zorder=0)
    ax.set_xlabel(("Fleet energy" if cost == "energy_j" else "Simulated time") + f" ({unit})")
    ax.set_ylabel("Final test accuracy (%)")
    ax.set_title(title, loc="left")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig


def _table(stats: Sequence[CellStats]) -> pg.Table:
    def pm(s: CellStats, m: str, fmt: Any, k: float = 1.0) -> str:
        if math.isnan(s.mean[m]):
            return "—"
        return f"{fmt(s.mean[m] * k)} ± {fmt(s.std[m] * k)}"

    rows, bold, swatches = [], set(), {}
    for i, s in enumerate(stats):
        rows.append([s.cell.name, s.cell.label, str(len(s.runs)),
                     pm(s, "final_accuracy", lambda v: f"{v:.2f} %", 100.0),
                     pm(s, "energy_j", style.fmt_energy), pm(s, "sim_time_s", style.fmt_time),
                     ("★ energy" if s.pareto_energy else "")
                     + (" ★ time" if s.pareto_time else "")])
        swatches[(i, 0)] = color(s.cell.index)
        if s.pareto_energy:
            bold.add((i, 3))
    return pg.Table(["cell", "settings", "seeds", "final accuracy", "fleet energy",
                     "simulated time", "Pareto front"], rows, align="lllrrrl", bold=bold,
                    swatches=swatches,
                    caption="Mean ± std over seeds. ★: not dominated (no other cell is at "
                            "least as accurate for at most the cost).")


def build_page(stats: Sequence[CellStats], title: str) -> tuple[list[pg.Block], str, str]:
    series = [Series(f"{s.cell.name}: {s.cell.label}", [load_run(r) for r in s.runs],
                     color(s.cell.index)) for s in stats]
    blocks: list[pg.Block] = [
        pg.Heading("Accuracy against energy and time", "pareto"),
        pg.Figure("fig-pareto-energy", pareto_figure(
            stats, "energy_j", "pareto_energy", "Final accuracy vs fleet energy"),
            "Each cell's mean final accuracy against the fleet energy of its runs (bars: std "
            "over seeds). Stars and the dashed line: the Pareto front.",
            "Final accuracy vs fleet energy, Pareto front"),
        pg.Figure("fig-pareto-time", pareto_figure(
            stats, "sim_time_s", "pareto_time", "Final accuracy vs simulated time"),
            "The same against simulated wall-clock time.",
            "Final accuracy vs simulated time, Pareto front"),
        pg.Heading("Cells", "cells"), _table(stats),
        pg.Heading("Accuracy curves per cell", "curves"),
        pg.Figure("fig-cell-curves", accuracy_curves(
            series, "sim_time_s", title="Test accuracy vs simulated time, per cell"),
            "Mean over seeds per cell, with the band between the lowest and highest seed.",
            "Accuracy curves per cell"),
    ]
    n_runs = sum(len(s.runs) for s in stats)
    return blocks, title, f"{len(stats)} cells, {n_runs} runs"


def write_page(folder: Path, stats: Sequence[CellStats], title: str) -> Path:
    out = prepare_output(folder)
    return write_outputs(out, "sweep", build_page(stats, title),
                         [r for s in stats for r in s.runs][:6], lambda: None, "the sweep page")
