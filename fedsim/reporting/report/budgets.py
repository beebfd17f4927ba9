"""The report's budget section: who joined, at what precision, and what stopped them going
higher -- read from the run's ``plan.csv`` (written by every run since budgets can be
derived from the hardware; older runs simply have no such section)."""

from __future__ import annotations

import numpy as np

from fedsim.records.reader import Table, read_table
from fedsim.records.schema import PLAN
from fedsim.reporting import metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.run import Run


def budgets_section(run: Run) -> list[pg.Block]:
    path = run.path / "plan.csv"
    if not path.is_file():
        return []
    plan = read_table(path, PLAN)
    fixed = {g["group"]: g["budget_bits"] for g in metrics.fleet_groups(run)
             if g["budget_bits"] != "auto"}
    blocks: list[pg.Block] = [pg.Heading("Budgets: who joins, at what precision", "budgets")]
    rows, swatches = [], {}
    for group in dict.fromkeys(plan["group"].tolist()):
        g = plan.where(plan["group"] == group)
        rows.append(_group_row(g, fixed.get(group)))
        swatches[(len(rows) - 1, 1)] = style.class_color(str(g["device_class"][0]))
    blocks.append(pg.Table(
        ["group", "device class", "budgets given (clients)", "excluded", "first client",
         "why not higher"], rows, align="llllll", swatches=swatches,
        caption="Each budget priced with the cost model the run charges (plan.csv: time, "
                "energy and memory of one round per budget). `fedsim plan SCENARIO "
                "--clients` shows every client; docs/budgets.md the rule."))
    return blocks


def _group_row(g: Table, fixed: str | None) -> list[str]:
    """One group: the budgets its clients got, and why its first client's is not higher."""
    budgets, binding = g["budget"], g["binding"]
    given = ", ".join(f"{_b(b)} ({int(n)})" for b, n in zip(budgets, g["clients"], strict=True)
                      if n > 0) or "none"
    chosen = np.flatnonzero(g["chosen"] == 1)
    at = budgets[chosen[0]] if len(chosen) else None
    if fixed is not None:
        own = binding[chosen[0]] if len(chosen) else ""
        why = f"fixed by the scenario ({fixed} bits)" + (f"; it breaks {own}" if own else "")
    else:
        higher = [i for i in range(len(budgets))
                  if binding[i] and (at is None or budgets[i] > at)]
        why = (f"{_b(budgets[higher[-1]])} breaks {binding[higher[-1]]}" if higher
               else "the method's highest precision fits")
    return [str(g["group"][0]), style.class_name(str(g["device_class"][0])), given,
            str(int(g["excluded"][0])), "excluded" if at is None else _b(at), why]


def _b(b: float) -> str:
    return "float" if b >= 32 else f"{b:g} bits"
