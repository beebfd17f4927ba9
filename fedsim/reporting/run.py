"""A finished run folder as the reports see it: metadata, typed columns, events on demand.

The files are parsed by :mod:`fedsim.records.reader` against :mod:`fedsim.records.schema`
(the same reader ``fedsim verify`` uses); this module adds what reports ask of a run (its
identity, device classes in fleet order, memoised statistics). It never imports the
simulator, so a report can be made on any machine from a copied results folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.records.reader import (
    Table,
    check_run_folder,
    child_runs,
    iter_events,
    read_mapping,
    read_table,
    run_files_present,
)
from fedsim.records.schema import (
    BATTERY,
    BITS,
    CLIENTS,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    ROUNDS,
    RUN_FILES,
    STRAGGLER,
)

__all__ = ["INFEASIBLE", "OK", "RUN_FILES", "STRAGGLER", "Run", "Table", "load_run",
           "resolve_group"]

#: Statuses of clients lost to fleet dynamics (drawn together in the reports).
DROPOUT_STATUSES = (DROPOUT, OFFLINE, BATTERY)


@dataclass
class Run:
    """One finished run folder, validated and parsed (events are read on demand)."""

    path: Path
    scenario: dict[str, Any]
    summary: dict[str, Any]
    rounds: Table
    clients: Table
    _class_order: list[str] = field(default_factory=list, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def bits(self, rounds: set[int] | None = None) -> Table:
        """Rows of bits.csv (only those of ``rounds`` when given: the file can be large)."""
        key = f"bits:{sorted(rounds) if rounds is not None else 'all'}"
        if key not in self._cache:
            self._cache[key] = read_table(self.path / "bits.csv", BITS, keep_rounds=rounds)
        return self._cache[key]  # type: ignore[no-any-return]

    def cached(self, key: str, make: Any) -> Any:
        """Memoise a derived value (statistics are asked for by several figures)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # -- identity ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def algorithm(self) -> str:
        alg = self.summary.get("algorithm")
        if not alg:
            alg = (self.scenario.get("algorithm") or {}).get("name", "unknown")
        return str(alg)

    @property
    def scenario_name(self) -> str:
        return str(self.summary.get("scenario") or self.scenario.get("name") or "scenario")

    @property
    def seed(self) -> Any:
        return self.summary.get("seed", self.scenario.get("seed"))

    @property
    def n_rounds(self) -> int:
        """Completed (recorded) rounds."""
        return len(self.rounds)

    @property
    def planned_rounds(self) -> int | None:
        r = self.scenario.get("rounds")
        return int(r) if isinstance(r, int | float) else None

    # -- fleet ------------------------------------------------------------------------------
    @property
    def device_classes(self) -> list[str]:
        """Device classes in fleet order (order of their first client id)."""
        if not self._class_order:
            c = self.clients
            first: dict[str, float] = {}
            for cls, cid in zip(c["device_class"], c["client_id"], strict=True):
                first[cls] = min(first.get(cls, math.inf), cid)
            self._class_order = sorted(first, key=lambda k: (first[k], k))
        return self._class_order

    def client_classes(self) -> dict[int, str]:
        """client id -> device class (from clients.csv)."""
        return self.cached("client_classes", lambda: {
            int(i): str(k) for i, k in zip(self.clients["client_id"],
                                           self.clients["device_class"], strict=True)})

    # -- events -----------------------------------------------------------------------------
    def iter_events(self, rounds: set[int] | None = None) -> Iterator[dict[str, Any]]:
        """Events of events.jsonl (only those of ``rounds`` when given), in file order."""
        for _, ev in iter_events(self.path / "events.jsonl", rounds):
            yield ev


def load_run(path: str | Path) -> Run:
    """Validate and read the run folder at ``path``.

    Raises :class:`InputError` naming the missing file(s), a missing column or a bad value.
    """
    path = Path(path)
    check_run_folder(path)
    scenario = read_mapping(path / "scenario.yaml", "the run's scenario")
    summary = read_mapping(path / "summary.json", "the run's summary")
    rounds = read_table(path / "rounds.csv", ROUNDS).sorted_by("round")
    clients = read_table(path / "clients.csv", CLIENTS)
    read_table(path / "bits.csv", BITS, header_only=True)
    return Run(path=path, scenario=scenario, summary=summary, rounds=rounds, clients=clients)


def resolve_group(path: str | Path) -> list[Path]:
    """Run folders behind one ``compare`` argument: the run itself, or a seeds parent's runs."""
    path = Path(path)
    if path.is_dir() and not run_files_present(path):
        children = child_runs(path)
        if children:
            return children
    check_run_folder(path)
    return [path]
