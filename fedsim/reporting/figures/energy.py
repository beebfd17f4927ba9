"""Energy of one run per device class, stacked by phase."""

from __future__ import annotations

from typing import Any

from fedsim.reporting import metrics, style
from fedsim.reporting.figures.bars import stacked
from fedsim.reporting.figures.canvas import empty, new_figure, styled, text_on
from fedsim.reporting.run import Run


def _phase_shares(ax: Any, stats: list[metrics.Stats]) -> None:
    """(c): each class's energy split in percent, so a class that spends little still shows
    where its energy goes; shares of 7 % and more are written on the bar."""
    shares = {p: [100 * s.energy[p] / s.energy_j if s.energy_j else 0.0 for s in stats]
              for p in style.PHASES}
    stacked(ax, [style.class_name(s.device_class) for s in stats], shares, 1.0,
            horizontal=True)
    for i in range(len(stats)):
        left = 0.0
        for p in style.PHASES:
            v = shares[p][i]
            if v >= 7:
                ax.text(left + v / 2, i, f"{v:.0f}%", ha="center", va="center", fontsize=7.5,
                        color=text_on(style.PHASE_COLORS[p]))
            left += v
    ax.set_xlim(0, 100)
    ax.set_xlabel("Share of the class's energy (%)")
    ax.set_title("(c) Where each class's energy goes", loc="left")


@styled
def energy_by_class(run: Run) -> Any:
    """(a) total and (b) per-client-round energy per class, stacked by phase; (c) the split
    of each class's energy in percent, readable even for classes that spend little."""
    stats = [s for s in metrics.class_stats(run) if s.client_rounds]
    fig = new_figure(style.WIDE, 3.6 + 0.3 * max(2, len(stats)))
    fig.get_layout_engine().set(hspace=0.06)
    grid = fig.add_gridspec(2, 2, height_ratios=[2.6, 0.5 + 0.26 * max(2, len(stats))])
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax3 = fig.add_subplot(grid[1, :])
    if not stats:
        for ax in (ax1, ax2, ax3):
            empty(ax, "no client-rounds recorded")
        return fig
    labels = [f"{style.class_name(s.device_class)}\n({len(s.clients)} clients)" for s in stats]
    totals = {p: [s.energy[p] for s in stats] for p in style.PHASES}
    f1, u1 = style.energy_unit(max(s.energy_j for s in stats))
    stacked(ax1, labels, totals, f1, annotate=style.fmt_energy)
    ax1.set_ylabel(f"Energy ({u1})")
    ax1.set_title("(a) Total energy per device class", loc="left")
    per = {p: [s.per_client_round(p) for s in stats] for p in style.PHASES}
    f2, u2 = style.energy_unit(max(sum(per[p][i] for p in style.PHASES)
                                   for i in range(len(stats))))
    stacked(ax2, labels, per, f2, annotate=style.fmt_energy)
    ax2.set_ylabel(f"Energy per client-round ({u2})")
    ax2.set_title("(b) Mean energy per selected client-round", loc="left")
    if len(stats) > 4:
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelsize=7.5)
    _phase_shares(ax3, stats)
    handles, labs = ax1.get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside lower center", ncol=4)
    return fig
