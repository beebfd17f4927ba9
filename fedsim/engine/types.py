"""Plain data that crosses the seam between the engine and real training.

The engine never sees tensors: it hands a :class:`WorkItem` (ids, bits, counts, a seed) to a
:class:`TrainerPort` and gets back a future of a :class:`WorkResult` (the bits the client
actually uploads, and scalars). The heavy update stays behind the port, keyed by ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ClientDesc:
    """What the engine knows about a client: identity, device and budget."""

    client_id: int
    group: str
    device: str
    device_class: str
    budget_bits: float
    samples: int


@dataclass(frozen=True)
class WorkItem:
    """One client's local training in one round."""

    round: int
    client_id: int
    bits: tuple[int, ...]
    samples: int
    epochs: int
    steps: int
    seed: int
    attempt: int = 0  # async: the client's n-th task started from this model version

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.round, self.client_id, self.attempt)


@dataclass(frozen=True)
class WorkResult:
    """What the engine needs back from training: upload bits and a few scalars."""

    round: int
    client_id: int
    bits_up: tuple[int, ...]
    samples: int
    train_loss: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)


class PendingEval(Protocol):
    """An evaluation the port computes later (while the next round trains)."""

    def result(self) -> EvalResult: ...


class TrainerPort(Protocol):
    """The engine's only door to training (real, or synthetic for system-only runs)."""

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """Per-client bit vector the server sends this round (server side of the algorithm)."""
        ...

    def submit(self, item: WorkItem) -> Future[WorkResult]:
        """Start local training now; the engine waits on the future in simulated-time order."""
        ...

    def discard(self, key: tuple[int, int, int]) -> None:
        """Forget a submitted task whose result will not be used (straggler, dropout)."""
        ...

    def aggregate(self, round: int, keys: Sequence[tuple[int, int, int]]) -> None:
        """Synchronous aggregation over these tasks' results (the engine passes only ids)."""
        ...

    def aggregate_async(
        self, round: int, keys: Sequence[tuple[int, int, int]], staleness: Sequence[int]
    ) -> None:
        """Buffered asynchronous aggregation (FedBuff) of these tasks' results."""
        ...

    def evaluate(self, round: int) -> EvalResult | PendingEval:
        """Test the global model (now, or later: see ``Engine.close_round``)."""
        ...


@dataclass(frozen=True)
class PhaseCost:
    time_s: float
    energy_j: float
    payload_bits: int = 0


class CostOracle(Protocol):
    """Simulated time/energy/memory of a client's work, from the hardware models."""

    def compute(self, client_id: int, bits: Sequence[int], steps: int) -> PhaseCost: ...

    def transfer(self, client_id: int, bits: Sequence[int], direction: str) -> PhaseCost: ...

    def memory_problem(self, client_id: int, bits: Sequence[int]) -> str | None: ...

    def idle_power_w(self, client_id: int) -> float: ...

    def avg_bits(self, bits: Sequence[int]) -> float: ...
