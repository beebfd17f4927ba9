"""Bit-widths of one run: per-layer heatmap of the last round, trajectories over rounds."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting.figures.canvas import empty, new_figure, styled
from fedsim.reporting.run import Run


def _bit_cmap(values: np.ndarray) -> tuple[Any, Any, list[float]]:
    """A discrete colour per bit-width present; 1-8 bits at fixed places on viridis so a
    colour means the same bits in every report, wider ones in pale neutrals."""
    import matplotlib
    from matplotlib.colors import BoundaryNorm, ListedColormap

    levels = sorted({float(v) for v in values[np.isfinite(values)]}) or [32.0]
    base = matplotlib.colormaps["viridis"]
    colors = []
    for v in levels:
        if v > 8:
            colors.append("#F0E0B0" if v < 32 else "#E8E8E8")
        else:
            # 1 bit is dark, 8 bits bright: fixed positions so colours mean the same bits
            colors.append(base(0.05 + 0.9 * (v - 1) / 7))
    edges = [levels[0] - 0.5] + [(a + b) / 2 for a, b in itertools.pairwise(levels)]
    edges.append(levels[-1] + 0.5)
    return ListedColormap(colors), BoundaryNorm(edges, len(colors)), levels


def _row_labels(ax: Any, bm: metrics.BitMatrix) -> None:
    """Name every row (client · class) up to 40 rows; beyond, one label per class block."""
    n = len(bm.clients)
    if n <= 40:
        ax.set_yticks(range(n), [f"{c} · {style.class_name(k)}"
                                 for c, k in zip(bm.clients, bm.classes, strict=True)],
                      fontsize=7.5 if n > 20 else 8.5)
        return
    blocks: dict[str, list[int]] = {}
    for i, k in enumerate(bm.classes):
        blocks.setdefault(k, []).append(i)
    ax.set_yticks([(v[0] + v[-1]) / 2 for v in blocks.values()],
                  [f"{style.class_name(k)}\n({len(v)} clients)" for k, v in blocks.items()])


def _write_cells(ax: Any, data: np.ndarray) -> None:
    """Each cell's bits as text, a dash where the client reported nothing."""
    n, m = data.shape
    for i in range(n):
        for j in range(m):
            v = data[i, j]
            if math.isfinite(v):
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7,
                        color="white" if v <= 4 else "black")
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=7, color="#999999")


def _bit_panel(ax: Any, bm: metrics.BitMatrix, k: int, panels: int, cmap: Any, norm: Any,
               annotate: bool) -> Any:
    """Panel ``k`` (0: downlink bits, 1: uplink bits) of the heatmap; returns its image."""
    n, m = bm.down.shape
    data = bm.down if k == 0 else bm.up
    masked = np.ma.masked_invalid(data)
    im = ax.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    ax.set_facecolor("white")
    ax.grid(False)
    ax.set_xticks(range(m), bm.layers, rotation=60, ha="right", rotation_mode="anchor",
                  fontsize=7.5 if m > 12 else 8.5)
    _row_labels(ax, bm)
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    first = k == 0
    title = ("(a) Downlink / training bits" if first
             else "(b) Uplink bits (after precision reduction)")
    ax.set_title(title if panels == 2 else "Training bits per layer", loc="left")
    ax.set_xlabel("Quantized layer (input → output)")
    if first:
        ax.set_ylabel("Client · device class" if n <= 40 else "Device class")
    if annotate:
        _write_cells(ax, data)
    for i in range(1, n):
        if bm.classes[i] != bm.classes[i - 1]:
            ax.axhline(i - 0.5, color="white", linewidth=2.5)
    return im


@styled
def bit_heatmap(run: Run, bm: metrics.BitMatrix) -> Any:
    # the uplink panel only when clients reported bits that differ from what they were sent
    show_up = bool(np.isfinite(bm.up).any()) and not np.array_equal(
        np.nan_to_num(bm.up, nan=-1), np.nan_to_num(bm.down, nan=-1))
    n, m = bm.down.shape
    panels = 2 if show_up else 1
    height = min(9.5, 2.2 + 0.22 * n + 0.06 * max(len(s) for s in bm.layers))
    fig = new_figure(style.WIDE, height)
    axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
    both = np.concatenate([bm.down.ravel(), bm.up.ravel() if show_up else []])
    cmap, norm, levels = _bit_cmap(both)
    annotate = n * m * panels <= 500  # beyond that the numbers would not fit their cells
    im = None
    for k, ax in enumerate(axes):
        im = _bit_panel(ax, bm, k, panels, cmap, norm, annotate)
    cb = fig.colorbar(im, ax=list(axes), ticks=levels, shrink=0.9, pad=0.01, aspect=30)
    cb.ax.set_yticklabels([f"{v:g}" + (" (float)" if v >= 32 else "") for v in levels])
    cb.set_label("Bits per weight")
    cb.outline.set_visible(False)
    return fig


@styled
def bit_trajectories(run: Run) -> Any:
    down = metrics.bit_trajectories(run, "avg_bits")
    up = metrics.bit_trajectories(run, "avg_bits_up")
    fig = new_figure(style.WIDE, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, trajs, title in (
        (axes[0], down, "(a) Sent by the server (training precision)"),
        (axes[1], up, "(b) Reported by clients (uplink)"),
    ):
        for i, t in enumerate(trajs):
            col = style.class_color(t.device_class)
            # later classes drawn thinner, so classes with the same bits stay visible
            ax.plot(t.rounds, t.mean, color=col, marker="o",
                    markevery=max(1, len(t.rounds) // 20),
                    linewidth=max(1.1, 2.8 - 0.45 * i), markersize=max(3.0, 5.5 - 0.7 * i),
                    label=style.class_name(t.device_class), zorder=3 + i)
            ax.fill_between(t.rounds, t.lo, t.hi, color=col, alpha=0.18, linewidth=0)
            if t.budget is not None:
                ax.axhline(t.budget, color=col, linestyle=":", linewidth=1.1)
        ax.set_title(title, loc="left")
        ax.set_xlabel("Round")
        if not trajs:
            empty(ax, "no reports")
    axes[0].set_ylabel("Average bits per weight")
    from matplotlib.lines import Line2D

    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="#555555", linestyle=":", label="bit budget"))
    labels.append("bit budget")
    fig.legend(handles, labels, loc="outside lower center", ncol=min(6, len(handles)))
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig
