"""One row per grid cell: mean and std over seeds of the final numbers, and the Pareto front
of accuracy against energy (and against simulated time)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.records.reader import read_mapping
from fedsim.runner.seeds import stats
from fedsim.sweep.execute import Job
from fedsim.sweep.grid import Cell

METRICS = ("final_accuracy", "best_accuracy", "sim_time_s", "energy_j")


@dataclass
class CellStats:
    cell: Cell
    runs: list[Path]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    pareto_energy: bool = False
    pareto_time: bool = False


def cell_stats(folder: Path, cells: Sequence[Cell], jobs: Sequence[Job]) -> list[CellStats]:
    out = []
    for cell in cells:
        runs = [folder / j.name for j in jobs if j.cell.index == cell.index]
        summaries = [read_mapping(r / "summary.json", "the run's summary") for r in runs]
        st = CellStats(cell, runs)
        for m in METRICS:
            values = [s.get(m) for s in summaries]
            got = stats([math.nan if v is None else float(v) for v in values])
            st.mean[m], st.std[m] = got["mean"], got["std"]
        out.append(st)
    _mark_front(out, "energy_j", "pareto_energy")
    _mark_front(out, "sim_time_s", "pareto_time")
    return out


def _mark_front(stats: list[CellStats], cost: str, flag: str) -> None:
    """A cell is on the front when no other cell has at least its accuracy for at most its
    cost, with one of the two strictly better (mean final accuracy, mean cost)."""
    pts = [(s.mean[cost], s.mean["final_accuracy"]) for s in stats]
    for s, (c, a) in zip(stats, pts, strict=True):
        if math.isnan(c) or math.isnan(a):
            continue
        dominated = any(c2 <= c and a2 >= a and (c2 < c or a2 > a)
                        for c2, a2 in pts if not (math.isnan(c2) or math.isnan(a2)))
        setattr(s, flag, not dominated)


COLUMNS = ["cell", "label", "seeds", *(f"{m}_{k}" for m in METRICS for k in ("mean", "std")),
           "pareto_energy", "pareto_time"]


def write_table(stats: Sequence[CellStats], path: Path) -> list[dict[str, Any]]:
    rows = []
    for s in stats:
        row: dict[str, Any] = {"cell": s.cell.name, "label": s.cell.label, "seeds": len(s.runs)}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = s.mean[m], s.std[m]
        row["pareto_energy"], row["pareto_time"] = int(s.pareto_energy), int(s.pareto_time)
        rows.append(row)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return rows
