"""Engine integration tests with a fake port and a hand-made cost oracle (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from fedsim.engine.core import Engine, EngineConfig
from fedsim.engine.records import ClientRoundRecord, RoundRecord
from fedsim.engine.types import ClientDesc, EvalResult, PhaseCost, WorkItem, WorkResult


class FakeCost:
    """Compute time = client_id + 1 seconds per step; transfers 0.5 s; 2 W compute, 1 W radio."""

    def __init__(self, idle_w: float = 0.1, too_big: set[int] | None = None) -> None:
        self.idle_w = idle_w
        self.too_big = too_big or set()

    def compute(self, client_id: int, bits: Sequence[int], steps: int) -> PhaseCost:
        t = (client_id + 1) * steps * (sum(bits) / (8 * len(bits)))
        return PhaseCost(t, 2.0 * t)

    def transfer(self, client_id: int, bits: Sequence[int], direction: str) -> PhaseCost:
        return PhaseCost(0.5, 0.5, payload_bits=sum(bits) * 100)

    def memory_problem(self, client_id: int, bits: Sequence[int]) -> str | None:
        return "too big" if client_id in self.too_big else None

    def idle_power_w(self, client_id: int) -> float:
        return self.idle_w

    def avg_bits(self, bits: Sequence[int]) -> float:
        return sum(bits) / len(bits)


class FakePort:
    def __init__(self, reduce_to: int | None = None) -> None:
        self.submitted: list[WorkItem] = []
        self.aggregated: list[tuple[int, list[int]]] = []
        self.discarded: list[tuple[int, int]] = []
        self.reduce_to = reduce_to

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return {cid: (8, 8) for cid in client_ids}

    def submit(self, item: WorkItem) -> Future[WorkResult]:
        self.submitted.append(item)
        fut: Future[WorkResult] = Future()
        up = (self.reduce_to,) * 2 if self.reduce_to else item.bits
        fut.set_result(WorkResult(item.round, item.client_id, up, item.samples, 0.0))
        return fut

    def discard(self, key: tuple[int, int, int]) -> None:
        self.discarded.append(key)

    def aggregate(self, round: int, keys: Sequence[tuple[int, int, int]]) -> None:
        self.aggregated.append((round, [k[1] for k in keys]))

    def aggregate_async(self, round: int, keys: Sequence[tuple[int, int, int]],
                        staleness: Sequence[int]) -> None:
        self.aggregated.append((round, [k[1] for k in keys]))
        self.staleness = list(staleness)

    def evaluate(self, round: int) -> EvalResult:
        return EvalResult(accuracy=0.1 * (round + 1), loss=1.0)


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.clients: list[ClientRoundRecord] = []
        self.rounds: list[RoundRecord] = []

    def on_event(self, e: dict[str, Any]) -> None:
        self.events.append(e)

    def on_client(self, r: ClientRoundRecord) -> None:
        self.clients.append(r)

    def on_round(self, r: RoundRecord) -> None:
        self.rounds.append(r)


def make(n: int = 3, rounds: int = 2, per_round: int | None = None, deadline: float | None = None,
         cost: FakeCost | None = None, port: FakePort | None = None) -> tuple[Engine, Collect]:
    clients = [ClientDesc(i, "g", "dev", "sbc", 8, 10) for i in range(n)]
    obs = Collect()
    eng = Engine(
        EngineConfig(seed=1, rounds=rounds, per_round=per_round or n, epochs=1,
                     deadline_s=deadline),
        clients, port or FakePort(), cost or FakeCost(), obs, steps_for=lambda s: 1,
    )
    return eng, obs


def test_round_duration_is_slowest_client() -> None:
    eng, obs = make(n=3, rounds=1)
    eng.run()
    # client 2: 0.5 down + 3 compute + 0.5 up = 4 s
    assert obs.rounds[0].sim_time_s == pytest.approx(4.0)
    assert obs.rounds[0].participants == 3


def test_event_order_per_client() -> None:
    eng, obs = make(n=2, rounds=1)
    eng.run()
    kinds = [(e["kind"], e.get("client")) for e in obs.events]
    for cid in (0, 1):
        mine = [k for k, c in kinds if c == cid]
        assert mine == ["downlink_end", "compute_end", "uplink_end"]
    assert kinds[0][0] == "round_start" and kinds[-1][0] == "round_end"
    times = [e["t"] for e in obs.events]
    assert times == sorted(times)


def test_energy_by_phase_adds_up_with_idle() -> None:
    eng, obs = make(n=2, rounds=1, cost=FakeCost(idle_w=1.0))
    eng.run()
    c0 = next(c for c in obs.clients if c.client_id == 0)
    # client 0 finishes at 2.0 s, round closes at 3.0 s -> 1 s idle at 1 W
    assert c0.idle_s == pytest.approx(1.0)
    assert c0.energy_j == pytest.approx(0.5 + 2.0 + 0.5 + 1.0)
    assert obs.rounds[0].energy_j == pytest.approx(sum(c.energy_j for c in obs.clients))


def test_deadline_makes_stragglers_and_never_trains_them() -> None:
    port = FakePort()
    eng, obs = make(n=3, rounds=1, deadline=2.5, port=port)
    eng.run()
    status = {c.client_id: c.status for c in obs.clients}
    assert status == {0: "ok", 1: "straggler", 2: "straggler"}
    # client 1 computes 0.5..2.5 and would upload until 3.0: trained but late;
    # client 2 cannot finish compute (0.5 + 3 > 2.5) so it never trains on the host.
    assert [w.client_id for w in port.submitted] == [0, 1]
    assert port.aggregated == [(0, [0])]
    assert obs.rounds[0].sim_time_s == pytest.approx(2.5)
    c2 = next(c for c in obs.clients if c.client_id == 2)
    # energy charged until the deadline: downlink 0.5 J + 2 s of compute at 2 W
    assert c2.energy_j == pytest.approx(0.5 + 4.0)


def test_uplink_uses_result_bits() -> None:
    port = FakePort(reduce_to=2)
    eng, obs = make(n=1, rounds=1, port=port)
    eng.run()
    rec = obs.clients[0]
    assert rec.bits_up == (2, 2) and rec.bits_up_payload == 400 and rec.bits_down_payload == 1600


def test_infeasible_client_is_not_scheduled() -> None:
    port = FakePort()
    eng, obs = make(n=2, rounds=1, cost=FakeCost(too_big={1}), port=port)
    eng.run()
    assert [w.client_id for w in port.submitted] == [0]
    assert {c.client_id: c.status for c in obs.clients}[1] == "infeasible"


def test_selection_is_seeded_and_sized() -> None:
    eng1, obs1 = make(n=10, rounds=3, per_round=4)
    eng1.run()
    eng2, obs2 = make(n=10, rounds=3, per_round=4)
    eng2.run()
    assert obs1.events == obs2.events
    sel = [e["selected"] for e in obs1.events if e["kind"] == "round_start"]
    assert all(len(s) == 4 for s in sel) and len({tuple(s) for s in sel}) > 1
