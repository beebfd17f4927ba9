"""The figures of a report, as matplotlib :class:`~matplotlib.figure.Figure` objects.

No pyplot: figures are built directly (the Agg renderer draws them when saved), so making a
report never touches the caller's backend or global state. Every function takes the parsed
run(s) and returns one figure; the page module saves it as PNG and inline SVG.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting.run import OK, Run

F = TypeVar("F", bound=Callable[..., Any])


def styled(fn: F) -> F:
    """Build the figure under the report's rc settings (restored afterwards)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(style.RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(width: float, height: float, **kw: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kw)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="#666666", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def _pct_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


# ---------------------------------------------------------------------------------------------
# Series: one run, or a seed group, drawn as one curve
# ---------------------------------------------------------------------------------------------
@dataclass
class Series:
    label: str
    runs: list[Run]
    color: str
    linestyle: str = "-"
    marker: str = "o"
    extra: dict[str, Any] = field(default_factory=dict)


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
        _empty(ax, "no completed rounds: nothing to plot")
        ax.set_title(title, loc="left")
        return fig
    max_x = max(float(v.max()) for v in all_x)
    f, unit = _x_scale(x, max_x)
    for s in series:
        cs = curves[s.label]
        if len(cs) == 1:
            xs, ys = cs[0]
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
        else:
            b = metrics.band(cs)
            for xs, ys in cs:
                ax.plot(xs * f, ys * 100, color=s.color, linewidth=0.6, alpha=0.35, zorder=2)
            if b is not None:
                grid, mean, sd = b
                ax.plot(grid * f, mean * 100, color=s.color, linestyle=s.linestyle,
                        label=f"{s.label} (mean of {len(cs)} seeds)", zorder=3)
                ax.fill_between(grid * f, (mean - sd) * 100, (mean + sd) * 100,
                                color=s.color, alpha=0.18, linewidth=0, zorder=1)
    label = X_LABELS[x] + (f" ({unit})" if unit else "")
    ax.set_xlabel(label)
    ax.set_ylabel("Test accuracy (%)")
    ax.set_xlim(left=0 if x != "round" else None)
    _pct_axis(ax)
    ax.set_title(title, loc="left")
    if len(series) > 1 or mark_best:
        ax.legend(loc="lower right")
    return fig


# ---------------------------------------------------------------------------------------------
# Energy by device class and phase
# ---------------------------------------------------------------------------------------------
def _stacked(ax: Any, labels: list[str], parts: dict[str, list[float]], scale: float,
             horizontal: bool = False, annotate: Callable[[float], str] | None = None) -> None:
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
    if horizontal:
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks(pos, labels)
        ax.grid(axis="x", visible=False)


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
            _empty(ax, "no client-rounds recorded")
        return fig
    labels = [f"{style.class_name(s.device_class)}\n({len(s.clients)} clients)" for s in stats]
    totals = {p: [s.energy[p] for s in stats] for p in style.PHASES}
    f1, u1 = style.energy_unit(max(s.energy_j for s in stats))
    _stacked(ax1, labels, totals, f1, annotate=style.fmt_energy)
    ax1.set_ylabel(f"Energy ({u1})")
    ax1.set_title("(a) Total energy per device class", loc="left")
    per = {p: [s.per_client_round(p) for s in stats] for p in style.PHASES}
    f2, u2 = style.energy_unit(max(sum(per[p][i] for p in style.PHASES)
                                   for i in range(len(stats))))
    _stacked(ax2, labels, per, f2, annotate=style.fmt_energy)
    ax2.set_ylabel(f"Energy per client-round ({u2})")
    ax2.set_title("(b) Mean energy per selected client-round", loc="left")
    if len(stats) > 4:
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelsize=7.5)
    shares = {p: [100 * s.energy[p] / s.energy_j if s.energy_j else 0.0 for s in stats]
              for p in style.PHASES}
    _stacked(ax3, [style.class_name(s.device_class) for s in stats], shares, 1.0,
             horizontal=True)
    for i in range(len(stats)):
        left = 0.0
        for p in style.PHASES:
            v = shares[p][i]
            if v >= 7:
                ax3.text(left + v / 2, i, f"{v:.0f}%", ha="center", va="center", fontsize=7.5,
                         color=_text_on(style.PHASE_COLORS[p]))
            left += v
    ax3.set_xlim(0, 100)
    ax3.set_xlabel("Share of the class's energy (%)")
    ax3.set_title("(c) Where each class's energy goes", loc="left")
    handles, labs = ax1.get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside lower center", ncol=4)
    return fig


# ---------------------------------------------------------------------------------------------
# Per-client timeline
# ---------------------------------------------------------------------------------------------
MARK_STYLE = {
    "straggler": ("X", style.FAIL_COLOR, "straggler: cut at the deadline"),
    "infeasible": ("s", "#888888", "infeasible: not scheduled (memory)"),
    "dropout": ("v", "#AA3377", "dropped out"),
    "offline": ("v", "#66CCEE", "went offline"),
    "battery": ("v", "#EE6677", "battery exhausted"),
}


@styled
def client_timeline(run: Run, tl: metrics.Timeline | None = None) -> Any:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    tl = tl or metrics.timeline(run)
    n = len(tl.clients)
    fig = new_figure(style.WIDE, min(10.0, 1.7 + 0.26 * max(n, 3)))
    ax = fig.add_subplot()
    if not tl.rounds or not n:
        _empty(ax, "no client activity recorded")
        return fig
    t0 = min(tl.bounds[r][0] for r in tl.rounds)
    t1 = max(tl.bounds[r][1] for r in tl.rounds)
    f, unit = style.time_unit(t1 - t0)
    row = {cid: i for i, cid in enumerate(tl.clients)}
    for k, r in enumerate(tl.rounds):
        a, b = tl.bounds[r]
        if k % 2 == 1:
            ax.axvspan((a - t0) * f, (b - t0) * f, color="#F2F2F2", zorder=0, linewidth=0)
        ax.axvline((b - t0) * f, color="#777777", linewidth=0.8, linestyle="--", zorder=1)
        ax.text(((a + b) / 2 - t0) * f, -0.9, f"round {r}", ha="center", va="bottom",
                fontsize=8.5, color="#333333", clip_on=False)
    for seg in tl.segments:
        y = row[seg.client]
        width = (seg.end - seg.start) * f
        if width <= 0:
            continue
        h = 0.5 if seg.kind == "idle" else 0.72
        ax.add_patch(Rectangle(((seg.start - t0) * f, y - h / 2), width, h,
                               facecolor=style.PHASE_COLORS[seg.kind],
                               edgecolor=style.FAIL_COLOR if seg.failed else "none",
                               hatch="////" if seg.failed else None,
                               linewidth=0.8, alpha=0.55 if seg.failed else 1.0, zorder=2))
    kinds_seen = []
    for m in tl.marks:
        marker, color, _ = MARK_STYLE.get(m.kind, ("v", "#555555", m.kind))
        x = (m.t - t0) * f
        if m.kind == "infeasible" and m.round in tl.bounds:
            # never scheduled: a dotted line through the round it sat out
            a, b = tl.bounds[m.round]
            ax.plot([(a - t0) * f, (b - t0) * f], [row[m.client]] * 2, color=color,
                    linestyle=(0, (1, 2)), linewidth=1.6, zorder=2)
            x = (a - t0) * f + (t1 - t0) * f * 0.006
        ax.plot(x, row[m.client], marker=marker, color=color, markersize=7,
                markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=4)
        if m.kind not in kinds_seen:
            kinds_seen.append(m.kind)
    ax.set_ylim(n - 0.4, -1.0)
    ax.set_xlim(0, (t1 - t0) * f * 1.015)
    ax.set_yticks(range(n), [f"{cid} · {style.class_name(tl.classes[cid])}"
                             for cid in tl.clients])
    ax.set_ylabel("Client · device class")
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    for i in range(1, n):
        if tl.classes[tl.clients[i]] != tl.classes[tl.clients[i - 1]]:
            ax.axhline(i - 0.5, color="#999999", linewidth=0.6, zorder=1)
    start = f"t = {t0:,.1f} s" if t0 else "t = 0"
    ax.set_xlabel(f"Simulated time ({unit}) since round {tl.rounds[0]} started ({start})")
    handles: list[Any] = [Patch(color=style.PHASE_COLORS[p], label=style.PHASE_LABELS[p])
                          for p in style.PHASES]
    if any(s.failed for s in tl.segments):
        handles.append(Patch(facecolor="white", edgecolor=style.FAIL_COLOR, hatch="////",
                             label="phase interrupted"))
    for k in kinds_seen:
        marker, color, text = MARK_STYLE.get(k, ("v", "#555555", k))
        handles.append(Line2D([], [], marker=marker, color=color, linestyle="none",
                              markersize=7, label=text))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------
# Bit-widths
# ---------------------------------------------------------------------------------------------
def _bit_cmap(values: np.ndarray) -> tuple[Any, Any, list[float]]:
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


@styled
def bit_heatmap(run: Run, bm: metrics.BitMatrix) -> Any:
    show_up = bool(np.isfinite(bm.up).any()) and not np.array_equal(
        np.nan_to_num(bm.up, nan=-1), np.nan_to_num(bm.down, nan=-1))
    n, m = bm.down.shape
    panels = 2 if show_up else 1
    height = min(9.5, 2.2 + 0.22 * n + 0.06 * max(len(s) for s in bm.layers))
    fig = new_figure(style.WIDE, height)
    axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
    both = np.concatenate([bm.down.ravel(), bm.up.ravel() if show_up else []])
    cmap, norm, levels = _bit_cmap(both)
    annotate = n * m * panels <= 500
    im = None
    for k, ax in enumerate(axes):
        data = bm.down if k == 0 else bm.up
        masked = np.ma.masked_invalid(data)
        im = ax.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_facecolor("white")
        ax.grid(False)
        ax.set_xticks(range(m), bm.layers, rotation=60, ha="right", rotation_mode="anchor",
                      fontsize=7.5 if m > 12 else 8.5)
        if n <= 40:
            ax.set_yticks(range(n), [f"{c} · {style.class_name(k)}"
                                     for c, k in zip(bm.clients, bm.classes, strict=True)],
                          fontsize=7.5 if n > 20 else 8.5)
        else:  # too many rows to name: one label per device class block
            blocks: dict[str, list[int]] = {}
            for i, k in enumerate(bm.classes):
                blocks.setdefault(k, []).append(i)
            ax.set_yticks([(v[0] + v[-1]) / 2 for v in blocks.values()],
                          [f"{style.class_name(k)}\n({len(v)} clients)"
                           for k, v in blocks.items()])
        ax.tick_params(axis="y", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        title = ("(a) Downlink / training bits" if k == 0
                 else "(b) Uplink bits (after precision reduction)")
        ax.set_title(title if panels == 2 else "Training bits per layer", loc="left")
        ax.set_xlabel("Quantized layer (input → output)")
        if k == 0:
            ax.set_ylabel("Client · device class" if n <= 40 else "Device class")
        if annotate:
            for i in range(n):
                for j in range(m):
                    v = data[i, j]
                    if math.isfinite(v):
                        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7,
                                color="white" if v <= 4 else "black")
                    else:
                        ax.text(j, i, "–", ha="center", va="center", fontsize=7,
                                color="#999999")
        for i in range(1, n):
            if bm.classes[i] != bm.classes[i - 1]:
                ax.axhline(i - 0.5, color="white", linewidth=2.5)
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
            _empty(ax, "no reports")
    axes[0].set_ylabel("Average bits per weight")
    from matplotlib.lines import Line2D

    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="#555555", linestyle=":", label="bit budget"))
    labels.append("bit budget")
    fig.legend(handles, labels, loc="outside lower center", ncol=min(6, len(handles)))
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


# ---------------------------------------------------------------------------------------------
# Fairness across device classes
# ---------------------------------------------------------------------------------------------
@styled
def fairness(run: Run) -> Any:
    stats = metrics.class_stats(run)
    kinds = metrics.status_kinds(run)
    fig = new_figure(style.WIDE, 1.9 + 0.42 * max(3, len(stats)))
    ax1, ax2 = fig.subplots(1, 2)
    if not stats or not any(s.client_rounds for s in stats):
        _empty(ax1, "no client-rounds recorded")
        _empty(ax2, "")
        return fig
    labels = [style.class_name(s.device_class) for s in stats]
    pos = np.arange(len(stats))
    left = np.zeros(len(stats))
    for k in kinds:
        vals = np.array([100 * s.status.get(k, 0) / max(1, s.client_rounds) for s in stats])
        ax1.barh(pos, vals, left=left, height=0.62, color=style.status_color(k),
                 label=style.STATUS_LABELS.get(k, k), edgecolor="white", linewidth=0.5)
        for p, lft, v in zip(pos, left, vals, strict=True):
            if v >= 9:
                ax1.text(lft + v / 2, p, f"{v:.0f}%", ha="center", va="center", fontsize=7.5,
                         color=_text_on(style.status_color(k)))
        left += vals
    ax1.set_yticks(pos, [f"{lab}\n{s.client_rounds} client-rounds"
                         for lab, s in zip(labels, stats, strict=True)])
    ax1.invert_yaxis()
    ax1.set_xlim(0, 100)
    ax1.set_xlabel("Share of selected client-rounds (%)")
    ax1.set_title("(a) Participation outcome", loc="left")
    ax1.grid(axis="y", visible=False)
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7.5)

    acc = metrics.class_accuracy(run)
    colors = [style.class_color(s.device_class) for s in stats]
    if acc:
        vals = [100 * acc.get(s.device_class, np.nan) for s in stats]
        ax2.barh(pos, vals, height=0.62, color=colors)
        for p, v, c in zip(pos, vals, colors, strict=True):
            if math.isfinite(v):
                ax2.text(v - 1.5, p, f"{v:.1f} %", va="center", ha="right", fontsize=8,
                         color=_text_on(c))
        final = run.rounds["accuracy"][-1] if len(run.rounds) else np.nan
        if math.isfinite(final):
            ax2.axvline(100 * final, color="black", linestyle="--", linewidth=1,
                        label=f"global model: {100 * final:.1f} %")
            ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7.5)
        ax2.set_xlim(0, 105)
        ax2.set_xlabel("Client-model test accuracy, last round (%)")
        ax2.set_title("(b) Accuracy per device class", loc="left")
    else:
        sel = np.array([s.samples_selected for s in stats])
        agg = np.array([s.samples_aggregated for s in stats])
        sel_share = 100 * sel / sel.sum() if sel.sum() else sel
        agg_share = 100 * agg / agg.sum() if agg.sum() else agg
        h = 0.36
        ax2.barh(pos - h / 2, sel_share, height=h, color=colors, alpha=0.35,
                 label="share of samples selected")
        ax2.barh(pos + h / 2, agg_share, height=h, color=colors,
                 label="share of samples aggregated")
        for p, a, b in zip(pos, sel_share, agg_share, strict=True):
            ax2.text(a + 0.8, p - h / 2, f"{a:.0f}%", va="center", fontsize=7.5)
            ax2.text(b + 0.8, p + h / 2, f"{b:.0f}%", va="center", fontsize=7.5)
        top = max(float(sel_share.max(initial=0)), float(agg_share.max(initial=0)))
        ax2.set_xlim(0, max(10.0, top * 1.18))
        ax2.set_xlabel("Share of training samples (%)")
        ax2.set_title("(b) Weight in the global model", loc="left")
        from matplotlib.patches import Patch

        ax2.legend(handles=[Patch(facecolor="#777777", alpha=0.35, label="selected"),
                            Patch(facecolor="#777777", label="aggregated (reached the server)")],
                   loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7.5)
    ax2.set_yticks(pos, labels)
    ax2.invert_yaxis()
    ax2.grid(axis="y", visible=False)
    return fig


# ---------------------------------------------------------------------------------------------
# Compare figures
# ---------------------------------------------------------------------------------------------
@styled
def compare_energy(series: Sequence[Series]) -> Any:
    """(a) fleet energy per run split by phase; (b) mean energy per client-round per class."""
    fig = new_figure(style.WIDE, 1.9 + 0.5 * max(3, len(series)))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.15])
    labels = [s.label for s in series]
    parts: dict[str, list[float]] = {p: [] for p in style.PHASES}
    for s in series:
        stats = [metrics.class_stats(r) for r in s.runs]
        for p in style.PHASES:
            parts[p].append(float(np.mean([sum(st.energy[p] for st in sts) for sts in stats])))
    total_max = max((sum(parts[p][i] for p in style.PHASES) for i in range(len(series))),
                    default=0.0)
    f, u = style.energy_unit(total_max)
    _stacked(ax1, labels, parts, f, horizontal=True, annotate=style.fmt_energy)
    ax1.set_xlabel(f"Fleet energy ({u})")
    ax1.set_title("(a) Fleet energy by phase", loc="left")
    for tick, s in zip(ax1.get_yticklabels(), series, strict=True):
        tick.set_color(s.color)
    handles, labs = ax1.get_legend_handles_labels()
    # (b) grouped bars: class on y, one bar per run
    classes: list[str] = []
    for s in series:
        for r in s.runs:
            for k in r.device_classes:
                if k not in classes:
                    classes.append(k)
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
    if classes and np.isfinite(per).any():
        f2, u2 = style.energy_unit(float(np.nanmax(per)))
        pos_vals = per[np.isfinite(per) & (per > 0)]
        log = len(pos_vals) > 1 and pos_vals.max() / pos_vals.min() > 30
        h = 0.8 / len(series)
        pos = np.arange(len(classes))
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax2.transAxes, ax2.transData)
        for i, s in enumerate(series):
            ys = pos - 0.4 + h * (i + 0.5)
            ax2.barh(ys, np.nan_to_num(per[i]) * f2, height=h * 0.92, color=s.color,
                     hatch=["", "//", "..", "xx"][i % 4] if s.linestyle != "-" else "",
                     edgecolor="white", linewidth=0.4, label=s.label)
            for y, v in zip(ys, per[i], strict=True):
                if not v > 0:  # say so rather than leave a gap a reader could miss
                    ax2.text(0.01, y, "0 J" if v == 0 else "not in this run", va="center",
                             fontsize=7, color=s.color, transform=trans)
        ax2.set_yticks(pos, [style.class_name(k) for k in classes])
        ax2.invert_yaxis()
        if log:
            ax2.set_xscale("log")
        ax2.set_xlabel(f"Mean energy per selected client-round ({u2}"
                       + (", log scale)" if log else ")"))
        ax2.grid(axis="y", visible=False)
        ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, len(series)),
                   fontsize=7.5)
    else:
        _empty(ax2, "no client-rounds recorded")
    ax2.set_title("(b) Per device class", loc="left")
    ax1.legend(handles, labs, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
               fontsize=7.5)
    return fig


@styled
def compare_participation(series: Sequence[Series]) -> Any:
    classes: list[str] = []
    for s in series:
        for r in s.runs:
            for k in r.device_classes:
                if k not in classes:
                    classes.append(k)
    fig = new_figure(style.WIDE, 1.6 + 0.45 * max(3, len(classes)))
    ax = fig.add_subplot()
    if not classes:
        _empty(ax, "no client-rounds recorded")
        return fig
    h = 0.8 / len(series)
    pos = np.arange(len(classes))
    for i, s in enumerate(series):
        vals = []
        for k in classes:
            ok = sel = 0
            for r in s.runs:
                c = r.clients
                mine = c["device_class"] == k
                sel += int(np.count_nonzero(mine))
                ok += int(np.count_nonzero(mine & (c["status"] == OK)))
            vals.append(100 * ok / sel if sel else np.nan)
        bars = ax.barh(pos - 0.4 + h * (i + 0.5), vals, height=h * 0.92, color=s.color,
                       hatch=["", "//", "..", "xx"][i % 4] if s.linestyle != "-" else "",
                       edgecolor="white", linewidth=0.4, label=s.label)
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
