"""Per-client timeline: each client's phases over a few rounds, with failures marked."""

from __future__ import annotations

from typing import Any

from fedsim.records.schema import BATTERY, DROPOUT, INFEASIBLE, OFFLINE, STRAGGLER
from fedsim.reporting import metrics, style
from fedsim.reporting.figures.canvas import empty, new_figure, styled
from fedsim.reporting.run import Run

MARK_STYLE = {
    STRAGGLER: ("X", style.FAIL_COLOR, "straggler: cut at the deadline"),
    INFEASIBLE: ("s", "#888888", "infeasible: not scheduled (memory)"),
    DROPOUT: ("v", "#AA3377", "dropped out"),
    OFFLINE: ("v", "#66CCEE", "went offline"),
    BATTERY: ("v", "#EE6677", "battery exhausted"),
}


def _mark_style(kind: str) -> tuple[str, str, str]:
    """Marker, colour and legend text of a failure kind (a grey triangle for new kinds)."""
    return MARK_STYLE.get(kind, ("v", "#555555", kind))


def _draw_rounds(ax: Any, tl: metrics.Timeline, t0: float, f: float) -> None:
    """Shade every other round and draw each round's end, so rounds read apart."""
    for k, r in enumerate(tl.rounds):
        a, b = tl.bounds[r]
        if k % 2 == 1:
            ax.axvspan((a - t0) * f, (b - t0) * f, color="#F2F2F2", zorder=0, linewidth=0)
        ax.axvline((b - t0) * f, color="#777777", linewidth=0.8, linestyle="--", zorder=1)
        ax.text(((a + b) / 2 - t0) * f, -0.9, f"round {r}", ha="center", va="bottom",
                fontsize=8.5, color="#333333", clip_on=False)


def _draw_segments(ax: Any, tl: metrics.Timeline, row: dict[int, int], t0: float,
                   f: float) -> None:
    """One bar per phase; idle bars thinner, phases cut short hatched and faded."""
    from matplotlib.patches import Rectangle

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


def _draw_marks(ax: Any, tl: metrics.Timeline, row: dict[int, int], t0: float, t1: float,
                f: float) -> list[str]:
    """A marker where each failure happened; returns the kinds drawn, in order, for the
    legend."""
    kinds_seen = []
    for m in tl.marks:
        marker, color, _ = _mark_style(m.kind)
        x = (m.t - t0) * f
        if m.kind == INFEASIBLE and m.round in tl.bounds:
            # never scheduled: a dotted line through the round it sat out
            a, b = tl.bounds[m.round]
            ax.plot([(a - t0) * f, (b - t0) * f], [row[m.client]] * 2, color=color,
                    linestyle=(0, (1, 2)), linewidth=1.6, zorder=2)
            x = (a - t0) * f + (t1 - t0) * f * 0.006
        ax.plot(x, row[m.client], marker=marker, color=color, markersize=7,
                markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=4)
        if m.kind not in kinds_seen:
            kinds_seen.append(m.kind)
    return kinds_seen


def _label_axes(ax: Any, tl: metrics.Timeline, t0: float, t1: float, f: float,
                unit: str) -> None:
    """Name each row by client and class, with a line between device classes; the x axis
    counts from the first drawn round's start (absolute times would be long numbers)."""
    n = len(tl.clients)
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


def _legend(fig: Any, tl: metrics.Timeline, kinds_seen: list[str]) -> None:
    """Phases always; the interrupted-phase hatch and failure markers only when drawn."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color=style.PHASE_COLORS[p], label=style.PHASE_LABELS[p])
                          for p in style.PHASES]
    if any(s.failed for s in tl.segments):
        handles.append(Patch(facecolor="white", edgecolor=style.FAIL_COLOR, hatch="////",
                             label="phase interrupted"))
    for k in kinds_seen:
        marker, color, text = _mark_style(k)
        handles.append(Line2D([], [], marker=marker, color=color, linestyle="none",
                              markersize=7, label=text))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8)


@styled
def client_timeline(run: Run, tl: metrics.Timeline | None = None) -> Any:
    tl = tl or metrics.timeline(run)
    n = len(tl.clients)
    fig = new_figure(style.WIDE, min(10.0, 1.7 + 0.26 * max(n, 3)))
    ax = fig.add_subplot()
    if not tl.rounds or not n:
        empty(ax, "no client activity recorded")
        return fig
    t0 = min(tl.bounds[r][0] for r in tl.rounds)
    t1 = max(tl.bounds[r][1] for r in tl.rounds)
    f, unit = style.time_unit(t1 - t0)
    row = {cid: i for i, cid in enumerate(tl.clients)}
    _draw_rounds(ax, tl, t0, f)
    _draw_segments(ax, tl, row, t0, f)
    kinds_seen = _draw_marks(ax, tl, row, t0, t1, f)
    _label_axes(ax, tl, t0, t1, f, unit)
    _legend(fig, tl, kinds_seen)
    return fig
