"""The tables of a comparison: what was run, and the headline numbers side by side."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fedsim.reporting import metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.compare.groups import Group
from fedsim.reporting.describe import SETUP_FIELDS

#: Formats whose ± sd is written in the mean's unit ("1.20 ± 0.05 kJ", not "± 50.0 J").
_SAME_UNIT = (style.fmt_energy, style.fmt_time, style.fmt_bytes, style.fmt_j_per_point)

Fmt = Callable[..., str]
#: A table row: label, (text, sort key) per entry, and "max" / "min" when one is best.
Row = tuple[str, list[tuple[str, float | None]], str]

#: Headline rows (label, value of a run's Headline, format, which is best) around the
#: "to reach" rows, in the order the table shows them.
_BEFORE_REACH: list[tuple[str, Callable[[metrics.Headline], Any], Fmt, str]] = [
    ("final accuracy", lambda h: h.final_accuracy, style.fmt_pct, "max"),
    ("best accuracy", lambda h: h.best_accuracy, style.fmt_pct, "max"),
    ("simulated time", lambda h: h.sim_time_s, style.fmt_time, "min"),
    ("fleet energy", lambda h: h.energy_j, style.fmt_energy, "min"),
    ("energy per accuracy point", lambda h: h.j_per_point, style.fmt_j_per_point, "min"),
]
_AFTER_REACH: list[tuple[str, Callable[[metrics.Headline], Any], Fmt, str]] = [
    ("participation", lambda h: h.participation, lambda v: style.fmt_pct(v, 1), "max"),
    ("stragglers (client-rounds)", lambda h: float(h.stragglers), style.fmt_num, ""),
    ("infeasible (client-rounds)", lambda h: float(h.infeasible), style.fmt_num, ""),
    ("lost: dropout, offline, battery (client-rounds)", lambda h: float(h.lost), style.fmt_num,
     ""),
    ("data down", lambda h: h.bytes_down, style.fmt_bytes, "min"),
    ("data up", lambda h: h.bytes_up, style.fmt_bytes, "min"),
    ("avg bits, last round (down)", lambda h: h.final_bits_down, lambda v: f"{v:.2f}", ""),
    ("avg bits, last round (up)", lambda h: h.final_bits_up, lambda v: f"{v:.2f}", ""),
    ("rounds completed", lambda h: float(h.rounds_done), style.fmt_num, ""),
]


def head_swatches(groups: list[Group]) -> dict[int, str]:
    return {j + 1: g.series.color for j, g in enumerate(groups) if g.series is not None}


def _agg(values: list[float | None], fmt: Fmt) -> tuple[str, float | None]:
    """Text and sort key of a value over a group's runs: mean ± sd for several seeds.

    A value missing in any seed makes the whole cell "—": a mean over the seeds that have
    it would compare unlike with like.
    """
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals or len(vals) < len(values):
        return "—", None
    mean = float(np.mean(vals))
    if len(vals) == 1:
        return fmt(mean), mean
    sd = float(np.std(vals))
    sd_text = fmt(sd, mean) if fmt in _SAME_UNIT else fmt(sd)
    return f"{fmt(mean)} ± {sd_text}", mean


def _target(heads: list[list[metrics.Headline]]) -> float | None:
    """The accuracy every run reaches: the best accuracy of the weakest, floored to 0.1 %."""
    best_accs = [h.best_accuracy for hs in heads for h in hs]
    if best_accs and all(a is not None for a in best_accs):
        return math.floor(min(best_accs) * 1000) / 1000  # type: ignore[type-var]
    return None


def _reach_rows(groups: list[Group], target: float) -> list[Row]:
    """Time, energy and rounds each entry took to first reach ``target``."""
    reached = [[metrics.reach(r, target) for r in g.runs] for g in groups]
    label = f"{100 * target:.1f} %"

    def row(name: str, get: Callable[[tuple[Any, ...]], Any], fmt: Fmt) -> Row:
        return (f"{name} to reach {label}", [_agg([get(x) for x in xs], fmt) for xs in reached],
                "min")

    return [
        row("time", lambda x: x[0], style.fmt_time),
        row("energy", lambda x: x[1], style.fmt_energy),
        row("rounds", lambda x: None if x[2] is None else x[2] + 1, style.fmt_num),
    ]


def _bold_best(rows: list[Row], n_groups: int) -> set[tuple[int, int]]:
    """Cells to embolden: the best of each row that has a best, only where every entry has
    a value and not all are equal (a tie has no winner)."""
    bold = set()
    for i, (_, cells, better) in enumerate(rows):
        keys = [c[1] for c in cells]
        if better and n_groups > 1 and all(k is not None for k in keys):
            best = max(keys) if better == "max" else min(keys)  # type: ignore[type-var]
            if sum(1 for k in keys if k == best) < len(keys):
                for j, k in enumerate(keys):
                    if k == best:
                        bold.add((i, j + 1))
    return bold


def compare_table(groups: list[Group]) -> tuple[pg.Table, float | None]:
    """The headline numbers side by side, and the accuracy target of the "to reach" rows."""
    heads = [[metrics.headline(r) for r in g.runs] for g in groups]
    target = _target(heads)

    def rows_of(spec: list[tuple[str, Callable[[metrics.Headline], Any], Fmt, str]]
                ) -> list[Row]:
        return [(label, [_agg([get(h) for h in hs], fmt) for hs in heads], better)
                for label, get, fmt, better in spec]

    rows = rows_of(_BEFORE_REACH)
    if target is not None:
        rows += _reach_rows(groups, target)
    rows += rows_of(_AFTER_REACH)
    seeds = any(len(g.runs) > 1 for g in groups)
    table = pg.Table(["metric", *[g.label for g in groups]],
                     [[label, *[c[0] for c in cells]] for label, cells, _ in rows],
                     bold=_bold_best(rows, len(groups)),
                     caption="Headline numbers side by side (best of each row in bold"
                     + ("; mean ± sd over seeds" if seeds else "") + ")",
                     head_swatches=head_swatches(groups))
    return table, target


def runs_table(groups: list[Group]) -> pg.Table:
    rows = [[name, *[get(g.first) for g in groups]] for name, get in SETUP_FIELDS]
    rows.append(["seed" + ("s" if any(len(g.runs) > 1 for g in groups) else ""),
                 *[", ".join(str(r.seed) for r in g.runs) for g in groups]])
    rows.append(["run folder", *[f"`{g.path}`" for g in groups]])
    return pg.Table(["", *[g.label for g in groups]], rows, align="l" * (len(groups) + 1),
                    caption="What was run", head_swatches=head_swatches(groups))
