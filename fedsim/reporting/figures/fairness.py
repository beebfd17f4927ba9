"""Fairness across the device classes of one run: outcomes, and accuracy or weight."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting.figures.canvas import empty, new_figure, styled, text_on
from fedsim.reporting.run import Run

_LEGEND_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "fontsize": 7.5}


def _outcomes(ax: Any, run: Run, stats: list[metrics.Stats], pos: np.ndarray,
              labels: list[str]) -> None:
    """(a): what happened to each class's selected client-rounds, one stacked bar per class
    in percent, shares of 9 % and more written on the bar."""
    left = np.zeros(len(stats))
    for k in metrics.status_kinds(run):
        vals = np.array([100 * s.status.get(k, 0) / max(1, s.client_rounds) for s in stats])
        ax.barh(pos, vals, left=left, height=0.62, color=style.status_color(k),
                label=style.STATUS_LABELS.get(k, k), edgecolor="white", linewidth=0.5)
        for p, lft, v in zip(pos, left, vals, strict=True):
            if v >= 9:
                ax.text(lft + v / 2, p, f"{v:.0f}%", ha="center", va="center", fontsize=7.5,
                        color=text_on(style.status_color(k)))
        left += vals
    ax.set_yticks(pos, [f"{lab}\n{s.client_rounds} client-rounds"
                        for lab, s in zip(labels, stats, strict=True)])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("Share of selected client-rounds (%)")
    ax.set_title("(a) Participation outcome", loc="left")
    ax.grid(axis="y", visible=False)
    ax.legend(ncol=2, **_LEGEND_BELOW)


def _class_accuracy(ax: Any, run: Run, stats: list[metrics.Stats], pos: np.ndarray,
                    acc: dict[str, float], colors: list[str]) -> None:
    """(b) when clients recorded their accuracy: each class's last-round accuracy against
    the global model's (a dashed line)."""
    vals = [100 * acc.get(s.device_class, np.nan) for s in stats]
    ax.barh(pos, vals, height=0.62, color=colors)
    for p, v, c in zip(pos, vals, colors, strict=True):
        if math.isfinite(v):
            ax.text(v - 1.5, p, f"{v:.1f} %", va="center", ha="right", fontsize=8,
                    color=text_on(c))
    final = run.rounds["accuracy"][-1] if len(run.rounds) else np.nan
    if math.isfinite(final):
        ax.axvline(100 * final, color="black", linestyle="--", linewidth=1,
                   label=f"global model: {100 * final:.1f} %")
        ax.legend(**_LEGEND_BELOW)
    ax.set_xlim(0, 105)
    ax.set_xlabel("Client-model test accuracy, last round (%)")
    ax.set_title("(b) Accuracy per device class", loc="left")


def _sample_weight(ax: Any, stats: list[metrics.Stats], pos: np.ndarray,
                   colors: list[str]) -> None:
    """(b) otherwise: each class's share of the samples selected and of those aggregated,
    which shows the weight a class loses in the global model when it straggles or does not
    fit."""
    from matplotlib.patches import Patch

    sel = np.array([s.samples_selected for s in stats])
    agg = np.array([s.samples_aggregated for s in stats])
    sel_share = 100 * sel / sel.sum() if sel.sum() else sel
    agg_share = 100 * agg / agg.sum() if agg.sum() else agg
    h = 0.36
    ax.barh(pos - h / 2, sel_share, height=h, color=colors, alpha=0.35,
            label="share of samples selected")
    ax.barh(pos + h / 2, agg_share, height=h, color=colors,
            label="share of samples aggregated")
    for p, a, b in zip(pos, sel_share, agg_share, strict=True):
        ax.text(a + 0.8, p - h / 2, f"{a:.0f}%", va="center", fontsize=7.5)
        ax.text(b + 0.8, p + h / 2, f"{b:.0f}%", va="center", fontsize=7.5)
    top = max(float(sel_share.max(initial=0)), float(agg_share.max(initial=0)))
    ax.set_xlim(0, max(10.0, top * 1.18))
    ax.set_xlabel("Share of training samples (%)")
    ax.set_title("(b) Weight in the global model", loc="left")
    ax.legend(handles=[Patch(facecolor="#777777", alpha=0.35, label="selected"),
                       Patch(facecolor="#777777", label="aggregated (reached the server)")],
              ncol=2, **_LEGEND_BELOW)


@styled
def fairness(run: Run) -> Any:
    stats = metrics.class_stats(run)
    fig = new_figure(style.WIDE, 1.9 + 0.42 * max(3, len(stats)))
    ax1, ax2 = fig.subplots(1, 2)
    if not stats or not any(s.client_rounds for s in stats):
        empty(ax1, "no client-rounds recorded")
        empty(ax2, "")
        return fig
    labels = [style.class_name(s.device_class) for s in stats]
    pos = np.arange(len(stats))
    _outcomes(ax1, run, stats, pos, labels)
    acc = metrics.class_accuracy(run)
    colors = [style.class_color(s.device_class) for s in stats]
    if acc:
        _class_accuracy(ax2, run, stats, pos, acc, colors)
    else:
        _sample_weight(ax2, stats, pos, colors)
    ax2.set_yticks(pos, labels)
    ax2.invert_yaxis()
    ax2.grid(axis="y", visible=False)
    return fig
