"""Records the engine emits: one per client per round, one per round.

Only simulated, deterministic quantities live here; host time goes to summary.json alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# A client's status in a round: the names are part of the run-folder format.
from fedsim.records.schema import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    STALE,
    STRAGGLER,
)

__all__ = ["BATTERY", "DROPOUT", "INFEASIBLE", "OFFLINE", "OK", "STALE", "STRAGGLER",
           "ClientRoundRecord", "Observer", "RoundRecord"]


@dataclass
class ClientRoundRecord:
    """What one selected client did and spent in one round (units in the names)."""

    round: int
    client_id: int
    device: str
    device_class: str
    group: str
    budget_bits: float
    avg_bits: float
    samples: int
    compute_s: float = 0.0
    comm_s: float = 0.0
    energy_j: float = 0.0
    status: str = OK
    downlink_j: float = 0.0
    compute_j: float = 0.0
    uplink_j: float = 0.0
    idle_j: float = 0.0
    idle_s: float = 0.0
    bits_down_payload: int = 0
    bits_up_payload: int = 0
    avg_bits_up: float = 0.0
    finished_s: float | None = None
    reason: str = ""
    bits_down: tuple[int, ...] = ()
    bits_up: tuple[int, ...] = ()
    battery_j: float | None = None  # battery level after this round (None: mains power)
    staleness: int = 0  # async: model versions between download and aggregation

    def charge(self, phase: str, energy_j: float) -> None:
        setattr(self, f"{phase}_j", getattr(self, f"{phase}_j") + energy_j)
        self.energy_j = self.downlink_j + self.compute_j + self.uplink_j + self.idle_j


@dataclass
class RoundRecord:
    round: int
    sim_time_s: float
    energy_j: float  # cumulative fleet energy
    accuracy: float
    loss: float
    participants: int
    stragglers: int
    selected: int
    infeasible: int
    round_s: float
    round_energy_j: float
    dropouts: int = 0
    offline: int = 0
    battery: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


class Observer(Protocol):
    """Receives everything the engine records, in simulated-time order."""

    def on_event(self, event: dict[str, Any]) -> None: ...

    def on_client(self, record: ClientRoundRecord) -> None: ...

    def on_round(self, record: RoundRecord) -> None: ...
