"""The budget plan as a table: ``fedsim plan``, ``plan.csv`` of a run, the report's section.

One row per (fleet group, budget) priced for the group's first client -- or, with
``per_client``, per (client, budget) -- in the columns of :data:`fedsim.records.schema.PLAN`.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedsim.records.schema import PLAN, fmt
from fedsim.runner.budgets import ClientPlan, Limits


def plan_rows(plans: Sequence[ClientPlan], *, per_client: bool = False) -> list[dict[str, Any]]:
    """Rows of plan.csv: every budget of every group's first client (or of every client)."""
    rows = []
    for members in _by_group(plans).values():
        given = Counter(p.budget for p in members)
        shown = members if per_client else members[:1]
        for p in shown:
            c = p.client
            for o in p.options:
                rows.append({
                    "group": c.group, "device": c.profile.name,
                    "device_class": c.profile.device_class, "client_id": c.client_id,
                    "budget": float(o.budget), "avg_bits": o.avg_bits,
                    "memory_bytes": o.memory_bytes, "usable_bytes": o.usable_bytes,
                    "compute_s": o.compute_s, "comm_s": o.comm_s, "time_s": o.time_s,
                    "energy_j": o.energy_j, "binding": o.binding,
                    "chosen": int(p.budget is not None and o.budget == p.budget),
                    "clients": given.get(o.budget, 0), "excluded": given.get(None, 0),
                })
    return rows


def _by_group(plans: Sequence[ClientPlan]) -> dict[str, list[ClientPlan]]:
    groups: dict[str, list[ClientPlan]] = {}
    for p in plans:
        groups.setdefault(p.client.group, []).append(p)
    return groups


def write_plan_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PLAN.names)
        for r in rows:
            w.writerow([fmt(r[c]) for c in PLAN.names])


def render_plan(plans: Sequence[ClientPlan], *, per_client: bool = False) -> str:
    """The plan for a terminal: per group (or client) the budget, why, and every option."""
    from fedsim.hardware.memory import format_bytes

    out = []
    for label, members in _by_group(plans).items():
        first = members[0].client
        given = Counter(p.budget for p in members)
        dist = ", ".join(f"{_b(b)} x{n}" for b, n in sorted(given.items(), key=_order))
        mode = "auto" if members[0].auto else "fixed"
        out.append(f"{label} ({first.profile.name}, {first.profile.device_class}): "
                   f"{len(members)} clients, {mode} budget: {dist}")
        out.append(f"  limits: usable memory {format_bytes(members[0].options[0].usable_bytes)}"
                   f", {_limits_text(members[0].limits)}")
        for p in members if per_client else members[:1]:
            who = f"client {p.client.client_id}" if per_client else "first client"
            out.append(f"  {who}: {_b(p.budget)} - {p.reason}")
            out.append("    bits  avg_bits    memory  time_s    energy_j  binding")
            for o in p.options:
                mark = "*" if o.budget == p.budget else " "
                out.append(f"  {mark} {_b(o.budget):>5} {o.avg_bits:8.3g} "
                           f"{format_bytes(o.memory_bytes):>9} {o.time_s:7.4g} "
                           f"{o.energy_j:11.4g}  {o.binding or 'fits'}")
    return "\n".join(out)


def _limits_text(limits: Limits) -> str:
    parts = [f"deadline {limits.deadline_s:g} s" if limits.deadline_s is not None
             else "no deadline"]
    if limits.energy_j is not None:
        parts.append(f"allowance {limits.energy_j:g} J per round")
    if limits.battery_j is not None:
        parts.append(f"battery {limits.battery_j:.4g} J above its floor")
    return ", ".join(parts)


def _b(b: float | None) -> str:
    if b is None:
        return "excluded"
    return "float" if b >= 32 else f"{b:g}"


def _order(item: tuple[float | None, int]) -> float:
    return -1.0 if item[0] is None else float(item[0])
