"""Fleet dynamics in the engine: availability, failures, over-commit, batteries, async."""

from __future__ import annotations

import pytest

from fedsim.engine.availability import Diurnal, Markov, Trace, load_trace
from fedsim.engine.core import Engine, EngineConfig
from fedsim.engine.dynamics import ClientDynamics, Recharge
from fedsim.engine.types import ClientDesc
from fedsim.errors import InputError
from tests.engine.test_engine import Collect, FakeCost, FakePort


def engine(n: int, rounds: int, *, cost: FakeCost | None = None, port: FakePort | None = None,
           **kw) -> tuple[Engine, Collect, FakePort]:
    clients = [ClientDesc(i, "g", "dev", "phone", 8, 10) for i in range(n)]
    obs = Collect()
    port = port or FakePort()
    eng_kw = {k: kw.pop(k) for k in ("availability", "dynamics") if k in kw}
    cfg = EngineConfig(seed=3, rounds=rounds, per_round=kw.pop("per_round", n), epochs=1, **kw)
    return Engine(cfg, clients, port, cost or FakeCost(), obs, steps_for=lambda s: 1,
                  **eng_kw), obs, port


def test_trace_outage_removes_exactly_the_expected_client_rounds() -> None:
    # client 0 works 2 s a round, client 1 works 3 s; client 1 is offline in [3.25, 6.5)
    trace = Trace({0: ((0.0, float("inf")),), 1: ((0.0, 3.25), (6.5, float("inf")))})
    eng, obs, _ = engine(2, 4, availability=trace)
    eng.run()
    by_round: dict[int, list] = {}
    for c in obs.clients:
        by_round.setdefault(c.round, []).append((c.client_id, c.status))
    # round 0: [0, 3) both report. round 1 starts at 3.0, client 1 goes offline at 3.25
    # during its downlink; round 1 closes at 5.0. round 2 [5, 7): client 1 offline, not
    # selected. round 3 starts at 7.0 with client 1 back.
    assert by_round[0] == [(0, "ok"), (1, "ok")]
    assert by_round[1] == [(0, "ok"), (1, "offline")]
    assert by_round[2] == [(0, "ok")]
    assert by_round[3] == [(0, "ok"), (1, "ok")]
    c1 = next(c for c in obs.clients if c.round == 1 and c.client_id == 1)
    assert c1.energy_j == pytest.approx(0.25)  # half of the 0.5 J downlink
    assert [r.offline for r in obs.rounds] == [0, 1, 0, 0]


def test_going_offline_mid_work_aborts_and_charges_energy_so_far() -> None:
    # client 1 works 0..3 (down 0.5, compute 2, up 0.5); offline at 1.5 (mid compute)
    trace = Trace({0: ((0.0, float("inf")),), 1: ((0.0, 1.5), (100.0, float("inf")))})
    eng, obs, port = engine(2, 1, availability=trace)
    eng.run()
    c1 = next(c for c in obs.clients if c.client_id == 1)
    assert c1.status == "offline"
    # downlink 0.5 J + 1 s of compute at 2 W
    assert c1.energy_j == pytest.approx(0.5 + 2.0)
    assert port.discarded == [(0, 1, 0)]
    assert port.aggregated == [(0, [0])]


def test_failures_are_seeded_and_strike_inside_the_work() -> None:
    dyn = {i: ClientDynamics(failure_prob=0.5) for i in range(8)}
    eng, obs, _ = engine(8, 3, dynamics=dyn)
    eng.run()
    drops = [(c.round, c.client_id) for c in obs.clients if c.status == "dropout"]
    assert 0 < len(drops) < 24
    eng2, obs2, _ = engine(8, 3, dynamics={i: ClientDynamics(failure_prob=0.5) for i in range(8)})
    eng2.run()
    assert drops == [(c.round, c.client_id) for c in obs2.clients if c.status == "dropout"]
    for c in obs.clients:
        if c.status == "dropout":  # strikes within the planned work (0.5 + (id+1) + 0.5 s)
            assert c.compute_s + c.comm_s <= (c.client_id + 1) + 1.0 + 1e-9


def test_over_commit_aggregates_exactly_the_first_k_arrivals() -> None:
    eng, obs, port = engine(6, 1, per_round=3, over_commit=1.0)
    eng.run()
    # all 6 selected (3 * 2); client i finishes at 0.5 + (i+1) + 0.5 -> first three: 0, 1, 2
    assert port.aggregated == [(0, [0, 1, 2])]
    status = {c.client_id: c.status for c in obs.clients}
    assert [status[i] for i in range(6)] == ["ok"] * 3 + ["straggler"] * 3
    assert obs.rounds[0].sim_time_s == pytest.approx(4.0)


def test_battery_accounting_to_the_joule() -> None:
    # client 0 per round: downlink 0.5 J, compute 2 J (1 s at 2 W), uplink 0.5 J; alone, no idle
    dyn = {0: ClientDynamics(battery_capacity_j=10.0, battery_level_j=10.0,
                             battery_floor_j=1.0)}
    eng, obs, _ = engine(1, 5, dynamics=dyn, max_wait_s=600.0)
    eng.run()
    levels = [c.battery_j for c in obs.clients]
    statuses = [c.status for c in obs.clients]
    # 10 -> 7 -> 4 -> 1 (floor): the 4th round cannot be paid; run stops waiting for energy
    assert levels == [7.0, 4.0, 1.0]
    assert statuses == ["ok", "ok", "ok"]
    assert eng.stopped_reason is not None


def test_battery_floor_mid_work_and_recharge() -> None:
    # level 3.5 above a floor of 1.0 leaves 2.5 J: the 3 J round is refused up front
    dyn = {0: ClientDynamics(battery_capacity_j=10.0, battery_level_j=3.5, battery_floor_j=1.0,
                             recharge=Recharge(period_s=100.0, start_s=0.0, duration_s=10.0,
                                               power_w=1.0))}
    eng, obs, _ = engine(1, 2, dynamics=dyn, wait_s=5.0)
    eng.run()
    # waits until the window ends at t=10 (+10 J, capped at 10), then trains twice
    assert [c.status for c in obs.clients] == ["ok", "ok"]
    assert [c.battery_j for c in obs.clients] == pytest.approx([7.0, 4.0])
    assert obs.rounds[0].sim_time_s >= 10.0


def test_battery_refusal_is_recorded_when_others_can_train() -> None:
    dyn = {1: ClientDynamics(battery_capacity_j=10.0, battery_level_j=3.5, battery_floor_j=1.0)}
    eng, obs, _ = engine(2, 1, dynamics=dyn)
    eng.run()
    # client 1 has 2.5 J above its floor, its round needs 0.5 + 4 + 0.5 = 5 J
    assert {c.client_id: c.status for c in obs.clients} == {0: "ok", 1: "battery"}


def test_async_buffer_aggregates_every_k_in_time_order() -> None:
    eng, obs, port = engine(3, 2, mode="async", buffer_k=2, concurrency=3)
    eng.run()
    # finish times: client 0 at 2, client 1 at 3 -> first aggregation; client 0 again at 4,
    # client 2 at 4 -> second (same time: dispatch order)
    assert port.aggregated[0] == (0, [0, 1])
    assert len(obs.rounds) == 2 and obs.rounds[0].sim_time_s == pytest.approx(3.0)


def test_availability_models_are_seeded_per_client() -> None:
    d = Diurnal(seed=1, period_s=100.0, online_fraction=0.25)
    w = [next(iter(d.windows(c))) for c in range(5)]
    assert w == [next(iter(Diurnal(seed=1, period_s=100.0, online_fraction=0.25).windows(c)))
                 for c in range(5)]
    assert all(e - s <= 25.0 + 1e-9 for s, e in w)
    m = Markov(seed=1, mean_on_s=10.0, mean_off_s=5.0)
    it = m.windows(0)
    wins = [next(it) for _ in range(200)]
    on = sum(e - s for s, e in wins)
    assert 0.55 < on / wins[-1][1] < 0.78  # stationary share 2/3


def test_trace_file_parsing(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("client,start_s,end_s\n0,0,10\n0,5,20\nphone,30,40\n")
    got = load_trace(p, [{"g", "sbc"}, {"h", "phone"}], file="s.yaml", key="availability")
    assert got == {0: ((0.0, 20.0),), 1: ((30.0, 40.0),)}
    p.write_text("client,start_s,end_s\nmars,0,1\n")
    with pytest.raises(InputError, match="neither a client id"):
        load_trace(p, [{"g"}], file="s.yaml", key="availability")
