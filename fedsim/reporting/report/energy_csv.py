"""energy.csv: joules by phase, seconds and bytes per client, per device class and fleet."""

from __future__ import annotations

import csv
from pathlib import Path

from fedsim.reporting import metrics
from fedsim.reporting.output import csv_number
from fedsim.reporting.run import Run

ENERGY_COLUMNS = [
    "scope", "client_id", "device_class", "device", "group", "clients", "client_rounds",
    "aggregated", "stragglers", "infeasible", "dropouts", "compute_j", "downlink_j",
    "uplink_j", "idle_j", "energy_j", "busy_s", "compute_s", "comm_s", "idle_s",
    "bytes_down", "bytes_up",
]


def _energy_row(scope: str, s: metrics.Stats, cid: str = "") -> list[str]:
    num = csv_number
    return [
        scope, cid, s.device_class, s.device, s.group, str(len(s.clients)),
        str(s.client_rounds), str(s.aggregated), str(s.stragglers), str(s.infeasible),
        str(s.dropouts),
        *[num(s.energy[p]) for p in ("compute", "downlink", "uplink", "idle")],
        num(s.energy_j), num(s.busy_s), num(s.compute_s), num(s.comm_s), num(s.idle_s),
        num(s.bytes_down), num(s.bytes_up),
    ]


def _fleet_total(classes: list[metrics.Stats]) -> metrics.Stats:
    """The fleet row: the device classes' sums added up (every client is in one class)."""
    fleet = metrics.Stats(key="fleet", device_class="")
    for s in classes:
        fleet.clients |= s.clients
        fleet.client_rounds += s.client_rounds
        for k, v in s.status.items():
            fleet.status[k] += v
        for p in fleet.energy:
            fleet.energy[p] += s.energy[p]
        for a in ("compute_s", "comm_s", "idle_s", "bytes_down", "bytes_up"):
            setattr(fleet, a, getattr(fleet, a) + getattr(s, a))
    return fleet


def write_energy_csv(run: Run, path: Path) -> None:
    """Per client, per device class and fleet: joules by phase, seconds, bytes."""
    clients = metrics.client_stats(run)
    classes = metrics.class_stats(run)
    fleet = _fleet_total(classes)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(ENERGY_COLUMNS)
        for s in clients:
            w.writerow(_energy_row("client", s, s.key))
        for s in classes:
            w.writerow(_energy_row("device_class", s))
        w.writerow(_energy_row("fleet", fleet))
