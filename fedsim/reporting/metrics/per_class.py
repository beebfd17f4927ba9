"""Sums of clients.csv per device class and per client: energy, time, traffic, outcomes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedsim.reporting.run import DROPOUT_STATUSES, INFEASIBLE, OK, STRAGGLER, Run, Table

PHASE_COLUMNS = {"compute": "compute_j", "downlink": "downlink_j", "uplink": "uplink_j",
                 "idle": "idle_j"}


@dataclass
class Stats:
    """Sums over a set of client-rounds (one client, or one device class)."""

    key: str
    device_class: str
    device: str = ""
    group: str = ""
    clients: set[int] = field(default_factory=set)
    client_rounds: int = 0
    status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    energy: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASE_COLUMNS, 0.0))
    compute_s: float = 0.0
    comm_s: float = 0.0
    idle_s: float = 0.0
    bytes_down: float = 0.0
    bytes_up: float = 0.0
    samples_selected: float = 0.0
    samples_aggregated: float = 0.0

    @property
    def energy_j(self) -> float:
        return sum(self.energy.values())

    @property
    def busy_s(self) -> float:
        return self.compute_s + self.comm_s

    @property
    def aggregated(self) -> int:
        return self.status.get(OK, 0)

    @property
    def stragglers(self) -> int:
        return self.status.get(STRAGGLER, 0)

    @property
    def infeasible(self) -> int:
        return self.status.get(INFEASIBLE, 0)

    @property
    def dropouts(self) -> int:
        """Client-rounds lost any other way (dropout, offline, battery, ...)."""
        return self.client_rounds - self.aggregated - self.stragglers - self.infeasible

    @property
    def participation(self) -> float | None:
        return self.aggregated / self.client_rounds if self.client_rounds else None

    def per_client_round(self, phase: str) -> float:
        return self.energy[phase] / self.client_rounds if self.client_rounds else 0.0


class _Sums:
    """Column sums of clients.csv per group index, all done with ``np.bincount``.

    Long runs have a row per client and round, so a Python loop over rows would be slow.
    """

    def __init__(self, c: Table, inv: np.ndarray, n: int) -> None:
        self.c, self.inv, self.n = c, inv, n
        self.counts = np.bincount(inv, minlength=n)
        self.statuses = {str(k): np.bincount(inv, weights=(c["status"] == k), minlength=n)
                         for k in np.unique(c["status"])}
        self.energy = {p: self.total(col) for p, col in PHASE_COLUMNS.items()}
        self.compute_s, self.comm_s = self.total("compute_s"), self.total("comm_s")
        self.idle_s = self.total("idle_s")
        self.down = self.total("bits_down_payload") / 8
        self.up = self.total("bits_up_payload") / 8
        self.selected = self.total("samples")
        self.aggregated = self.total("samples", c["status"] == OK)

    def total(self, col: str, mask: np.ndarray | None = None) -> np.ndarray:
        v = np.nan_to_num(self.c[col].astype(float))
        if mask is not None:
            v = v * mask
        return np.bincount(self.inv, weights=v, minlength=self.n)

    def fill(self, st: Stats, g: int) -> None:
        """Copy group ``g``'s sums into ``st``."""
        st.client_rounds = int(self.counts[g])
        for k, v in self.statuses.items():
            if v[g]:
                st.status[k] = int(v[g])
        st.energy = {p: float(self.energy[p][g]) for p in PHASE_COLUMNS}
        st.compute_s, st.comm_s, st.idle_s = (float(self.compute_s[g]), float(self.comm_s[g]),
                                              float(self.idle_s[g]))
        st.bytes_down, st.bytes_up = float(self.down[g]), float(self.up[g])
        st.samples_selected = float(self.selected[g])
        st.samples_aggregated = float(self.aggregated[g])


def _grouped(run: Run, key_col: str) -> dict[Any, Stats]:
    """Sums of clients.csv per value of ``key_col`` (vectorised: long runs have many rows)."""
    c = run.clients
    if not len(c):
        return {}
    uniq, first, inv = np.unique(c[key_col], return_index=True, return_inverse=True)
    sums = _Sums(c, inv, len(uniq))
    members: dict[int, set[int]] = {}
    for g, cid in set(zip(inv.tolist(), c["client_id"].astype(int).tolist(), strict=True)):
        members.setdefault(g, set()).add(cid)
    out: dict[Any, Stats] = {}
    for g, key in enumerate(uniq):
        i = first[g]
        st = Stats(key=str(key if key_col != "client_id" else int(key)),
                   device_class=str(c["device_class"][i]), device=str(c["device"][i]),
                   group=str(c["group"][i]))
        st.clients = members.get(g, set())
        sums.fill(st, g)
        out[key.item() if hasattr(key, "item") else key] = st
    return out


def class_stats(run: Run) -> list[Stats]:
    """One :class:`Stats` per device class, in fleet order."""

    def make() -> list[Stats]:
        by = _grouped(run, "device_class")
        out = []
        for cls in run.device_classes:
            st = by[cls]
            st.key, st.device, st.group = cls, "", ""
            out.append(st)
        return out

    return run.cached("class_stats", make)  # type: ignore[no-any-return]


def client_stats(run: Run) -> list[Stats]:
    """One :class:`Stats` per client that was ever selected, by client id."""
    by = _grouped(run, "client_id")
    return [by[k] for k in sorted(by)]


def status_kinds(run: Run) -> list[str]:
    """Statuses present, in a fixed reading order (ok first, failures after)."""
    present = set(run.clients["status"].tolist())
    order = [OK, STRAGGLER, INFEASIBLE, *DROPOUT_STATUSES]
    return [s for s in order if s in present] + sorted(present - set(order))


def class_accuracy(run: Run) -> dict[str, float] | None:
    """Mean per-client accuracy of each device class in the last round (optional column)."""
    c = run.clients
    if "accuracy" not in c or not len(run.rounds):
        return None
    last = c.where(c["round"] == run.rounds["round"][-1])
    out = {}
    for cls in run.device_classes:
        v = last["accuracy"][last["device_class"] == cls]
        v = v[np.isfinite(v)]
        if len(v):
            out[cls] = float(v.mean())
    return out or None
