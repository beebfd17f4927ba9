"""compare.csv: one row per run folder of a comparison, with its headline numbers."""

from __future__ import annotations

import csv
from pathlib import Path

from fedsim.reporting import metrics
from fedsim.reporting.compare.groups import Group
from fedsim.reporting.output import csv_number

COMPARE_COLUMNS = [
    "label", "run_id", "run_dir", "algorithm", "scenario", "seed", "rounds_done",
    "final_accuracy", "best_accuracy", "sim_time_s", "energy_j", "j_per_point",
    "participation", "stragglers", "infeasible", "dropouts", "offline", "battery",
    "bytes_down", "bytes_up",
]


def write_compare_csv(groups: list[Group], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COMPARE_COLUMNS)
        for g in groups:
            for r in g.runs:
                h = metrics.headline(r)
                w.writerow([g.label, r.run_id, str(r.path), r.algorithm, r.scenario_name,
                            r.seed, h.rounds_done,
                            *["" if v is None else csv_number(v) for v in (
                                h.final_accuracy, h.best_accuracy, h.sim_time_s, h.energy_j,
                                h.j_per_point, h.participation)],
                            h.stragglers, h.infeasible, h.dropouts, h.offline, h.battery,
                            csv_number(h.bytes_down),
                            csv_number(h.bytes_up)])
