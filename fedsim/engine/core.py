"""The discrete-event engine: a server process drives rounds, one process per client.

The story of a synchronous round (FedAvg / FedMPQ):

1. The server picks clients among those online and able to pay the round (selection policy,
   seeded stream per round; with over-commit it picks more than it needs) and asks the
   algorithm, through the trainer port, for each client's downlink bit vector.
2. A client whose training configuration does not fit its usable memory, or whose battery
   cannot pay the round's planned energy, is not scheduled (recorded with the reason).
3. Each scheduled client: downlink, local compute, uplink. The compute time is known from
   the cost model *before* training, so a client that cannot finish before the deadline
   never trains on the host; it works (and spends energy) until the deadline interrupts it.
   A failure (per-round probability) strikes at a random point of the planned work; going
   offline or an empty battery interrupts it at that simulated moment. Energy spent so far
   is always charged.
4. The round closes when every client reported, the first ``per_round`` arrivals are in
   (over-commit), or the deadline fired; the others are interrupted.
5. The server aggregates the reports (ids only cross the port), evaluates, records.

Asynchronous mode (FedBuff, Nguyen et al. 2022): up to ``concurrency`` clients train at once;
each report enters a buffer; every ``buffer_k`` reports the server aggregates them with a
staleness weight and a new model version starts. Results are applied in simulated-time order.

Side processes: one per client for availability (walks its online windows) and one per
battery that recharges on a schedule. No torch and no host clock: durations come only from
the cost oracle, so the executor behind the port never changes the outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from fedsim.engine.availability import AlwaysOn, AvailabilityModel
from fedsim.engine.records import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    STALE,
    STRAGGLER,
    ClientRoundRecord,
    Observer,
    RoundRecord,
)
from fedsim.engine.selection import POLICIES, SelectionState
from fedsim.engine.types import ClientDesc, CostOracle, TrainerPort, WorkItem, WorkResult
from fedsim.seeding import derive_seed, rng

_CAUSE_STATUS = {
    "deadline": STRAGGLER,
    "over-commit": STRAGGLER,
    "failure": DROPOUT,
    "offline": OFFLINE,
    "battery": BATTERY,
    "end of run": STALE,
}


@dataclass(frozen=True)
class Recharge:
    """Charge at ``power_w`` for ``duration_s`` every ``period_s``, starting at ``start_s``."""

    period_s: float
    start_s: float
    duration_s: float
    power_w: float


@dataclass
class ClientDynamics:
    """Per-client fleet dynamics: failures and battery."""

    failure_prob: float = 0.0
    battery_capacity_j: float | None = None
    battery_level_j: float = 0.0
    battery_floor_j: float = 0.0
    recharge: Recharge | None = None


@dataclass(frozen=True)
class EngineConfig:
    seed: int
    rounds: int
    per_round: int
    epochs: int
    deadline_s: float | None = None
    mode: str = "sync"
    over_commit: float = 0.0
    policy: str = "random"
    buffer_k: int = 10
    concurrency: int = 10
    wait_s: float = 60.0
    max_wait_s: float = 30 * 86_400.0


class _BatteryEmpty(Exception):
    pass


@dataclass
class _Work:
    """Book-keeping of one client task while it runs."""

    rec: ClientRoundRecord
    item: WorkItem | None = None
    handle: Any = None
    consumed: bool = False
    phase: str | None = None
    phase_start: float = 0.0
    phase_duration: float = 0.0
    phase_energy: float = 0.0
    result: WorkResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Runs a federated protocol in simulated time."""

    def __init__(
        self,
        config: EngineConfig,
        clients: Sequence[ClientDesc],
        port: TrainerPort,
        cost: CostOracle,
        observer: Observer,
        steps_for: Callable[[int], int],
        *,
        availability: AvailabilityModel | None = None,
        dynamics: Mapping[int, ClientDynamics] | None = None,
        start_round: int = 0,
        start_time_s: float = 0.0,
        start_energy_j: float = 0.0,
    ) -> None:
        self.config = config
        self.clients = {c.client_id: c for c in clients}
        self.client_ids = sorted(self.clients)
        self.port = port
        self.cost = cost
        self.observer = observer
        self.steps_for = steps_for
        self.availability = availability or AlwaysOn()
        self.track_availability = not isinstance(self.availability, AlwaysOn)
        self.dynamics = {cid: (dynamics or {}).get(cid, ClientDynamics())
                         for cid in self.client_ids}
        self.start_round = start_round
        self.env = simpy.Environment(initial_time=start_time_s)
        self.fleet_energy_j = start_energy_j
        self.online = dict.fromkeys(self.client_ids, not self.track_availability)
        self.working: dict[int, simpy.Process] = {}
        self.policy = POLICIES[config.policy]
        self.selection_state = SelectionState(
            battery_j=self._battery_view(),
            samples={c.client_id: c.samples for c in clients},
        )
        self.stopped_reason: str | None = None
        self.rounds_done = 0
        self._attempts: dict[tuple[int, int], int] = {}
        self._battery_waiting = False
        self._held: list[dict[str, Any]] | None = None  # events of a round not yet committed
        # async: a client that could not be admitted is not offered again for wait_s
        self._excluded_until: dict[int, float] = {}

    # -- checkpoint support -------------------------------------------------------------------
    def snapshot(self, next_round: int) -> dict[str, Any]:
        """Engine state at a round boundary (plain values: safe to checkpoint)."""
        return {
            "next_round": next_round,
            "now": float(self.env.now),
            "fleet_energy_j": float(self.fleet_energy_j),
            "battery": {str(c): float(d.battery_level_j) for c, d in self.dynamics.items()
                        if d.battery_capacity_j is not None},
            "last_loss": {str(c): float(v) for c, v in self.selection_state.last_loss.items()},
            "expected_s": {str(c): float(v)
                           for c, v in self.selection_state.expected_s.items()},
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Continue from :meth:`snapshot` (the constructor already set round, time, energy)."""
        for c, level in snap.get("battery", {}).items():
            self.dynamics[int(c)].battery_level_j = float(level)
        self.selection_state.last_loss.update(
            {int(c): float(v) for c, v in snap.get("last_loss", {}).items()})
        self.selection_state.expected_s = {
            int(c): float(v) for c, v in snap.get("expected_s", {}).items()}

    # -- helpers -------------------------------------------------------------------------
    def _emit(self, kind: str, round: int, client: int | None = None, **fields: Any) -> None:
        event: dict[str, Any] = {"t": round_time(self.env.now), "round": round, "kind": kind}
        if client is not None:
            event["client"] = client
        event.update(fields)
        if self._held is not None:
            self._held.append(event)
        else:
            self.observer.on_event(event)

    def _battery_view(self) -> dict[int, float]:
        """Energy each battery client can still spend above its floor (for selection)."""
        return {cid: d.battery_level_j - d.battery_floor_j for cid, d in self.dynamics.items()
                if d.battery_capacity_j is not None}

    def _has_battery(self, cid: int) -> bool:
        return self.dynamics[cid].battery_capacity_j is not None

    def _spendable_j(self, cid: int) -> float:
        d = self.dynamics[cid]
        if d.battery_capacity_j is None:
            return math.inf
        return d.battery_level_j - d.battery_floor_j

    def _drain(self, cid: int, energy_j: float) -> None:
        d = self.dynamics[cid]
        if d.battery_capacity_j is not None:
            d.battery_level_j = max(0.0, d.battery_level_j - energy_j)

    def candidates(self) -> list[int]:
        """Clients online now whose battery is above its floor, and not already working."""
        now = self.env.now
        return [cid for cid in self.client_ids
                if self.online[cid] and cid not in self.working and self._spendable_j(cid) > 0
                and self._excluded_until.get(cid, -1.0) <= now]

    def select(self, round: int, cands: Sequence[int], k: int) -> list[int]:
        """Seeded choice (its own stream per round: nothing else shifts it)."""
        self.selection_state.battery_j = self._battery_view()
        return self.policy(list(cands), k, rng(self.config.seed, "select", round),
                           self.selection_state)

    def _plan(self, cid: int, bits: Sequence[int]) -> dict[str, Any]:
        """Costs known before any host work: downlink, compute, uplink at the downlink bits."""
        desc = self.clients[cid]
        steps = self.steps_for(desc.samples) * self.config.epochs
        down = self.cost.transfer(cid, bits, "down")
        comp = self.cost.compute(cid, bits, steps)
        up = self.cost.transfer(cid, bits, "up")  # upper bound: uploads never grow bits
        return {"steps": steps, "down": down, "comp": comp, "up_est": up,
                "time_s": down.time_s + comp.time_s + up.time_s,
                "energy_j": down.energy_j + comp.energy_j + up.energy_j}

    def _new_record(self, r: int, cid: int, bits: Sequence[int]) -> ClientRoundRecord:
        desc = self.clients[cid]
        return ClientRoundRecord(
            round=r, client_id=cid, device=desc.device, device_class=desc.device_class,
            group=desc.group, budget_bits=desc.budget_bits, avg_bits=self.cost.avg_bits(bits),
            samples=desc.samples, bits_down=tuple(bits),
        )

    def _admit(self, r: int, cid: int, bits: Sequence[int], rec: ClientRoundRecord,
               plan: dict[str, Any]) -> bool:
        """Memory and battery checks before scheduling; records why a client is left out."""
        problem = self.cost.memory_problem(cid, bits)
        if problem:
            rec.status, rec.reason = INFEASIBLE, problem
            self._emit("infeasible", r, cid, reason=problem)
            return False
        if plan["energy_j"] > self._spendable_j(cid):
            rec.status = BATTERY
            rec.reason = (f"battery cannot pay the round: needs {plan['energy_j']:.3g} J, "
                          f"{self._spendable_j(cid):.3g} J above the floor")
            self._emit("battery_low", r, cid, reason=rec.reason)
            return False
        return True

    # -- processes -------------------------------------------------------------------------
    def run(self) -> None:
        if self.track_availability:
            for cid in self.client_ids:
                self.env.process(self._availability_proc(cid))
        for cid, d in self.dynamics.items():
            if d.recharge is not None and d.battery_capacity_j is not None:
                self.env.process(self._recharge_proc(cid, d.recharge))
        server = self._async_server() if self.config.mode == "async" else self._server()
        proc = self.env.process(server)
        self.env.run(until=proc)

    def _availability_proc(self, cid: int):  # type: ignore[no-untyped-def]
        env = self.env
        for start, end in self.availability.windows(cid):
            if start > env.now:
                yield env.timeout(start - env.now)
            if end <= env.now:
                continue
            self.online[cid] = True
            if math.isinf(end):
                return
            yield env.timeout(end - env.now)
            self.online[cid] = False
            proc = self.working.get(cid)
            if proc is not None and proc.is_alive:
                proc.interrupt("offline")
        self.online[cid] = False

    def _recharge_proc(self, cid: int, rc: Recharge):  # type: ignore[no-untyped-def]
        env = self.env
        d = self.dynamics[cid]
        t = rc.start_s
        while True:
            end = t + rc.duration_s
            if end > env.now:
                yield env.timeout(end - env.now)
                assert d.battery_capacity_j is not None
                d.battery_level_j = min(d.battery_capacity_j,
                                        d.battery_level_j + rc.power_w * rc.duration_s)
            t += rc.period_s

    def _wait_for_clients(self, r: int):  # type: ignore[no-untyped-def]
        """Wait (in simulated time) until some client can work; False if none ever can."""
        waited = 0.0
        while not self.candidates():
            if waited >= self.config.max_wait_s:
                self.stopped_reason = (f"no client available for {waited:.0f} s of simulated "
                                       f"time before round {r}")
                self._emit("stopped", r, reason=self.stopped_reason)
                return False
            yield self.env.timeout(self.config.wait_s)
            waited += self.config.wait_s
        return True

    # -- synchronous rounds ---------------------------------------------------------------------
    def _server(self):  # type: ignore[no-untyped-def]
        r = self.start_round
        waited = 0.0
        while r < self.config.rounds:
            ok = yield from self._wait_for_clients(r)
            if not ok:
                return
            done = yield from self._round(r)
            if done:
                r, waited = r + 1, 0.0
                continue
            # Nobody selected could pay the round: wait for batteries to recharge.
            if waited >= self.config.max_wait_s:
                self.stopped_reason = (f"no selected client could pay round {r} for "
                                       f"{waited:.0f} s of simulated time")
                self._emit("stopped", r, reason=self.stopped_reason)
                return
            yield self.env.timeout(self.config.wait_s)
            waited += self.config.wait_s

    def _round(self, r: int):  # type: ignore[no-untyped-def]
        env = self.env
        cfg = self.config
        t0 = env.now
        energy_before = self.fleet_energy_j
        cands = self.candidates()
        k = min(cfg.per_round, len(cands))
        k_sel = min(len(cands), math.ceil(k * (1 + cfg.over_commit)))
        selected = self.select(r, cands, k_sel)
        self._held = []  # until we know this round goes ahead (not a battery retry)
        self._emit("round_start", r, selected=selected)
        bits = self.port.downlink_bits(r, selected)
        deadline_at = t0 + cfg.deadline_s if cfg.deadline_s else None

        records: dict[int, ClientRoundRecord] = {}
        procs: dict[int, simpy.Process] = {}
        arrivals: list[int] = []
        enough = env.event()
        target = k if cfg.over_commit > 0 else len(selected)

        def arrived(cid: int) -> None:
            arrivals.append(cid)
            if len(arrivals) >= target and not enough.triggered:
                enough.succeed()

        for cid in selected:
            b = tuple(bits[cid])
            rec = self._new_record(r, cid, b)
            records[cid] = rec
            plan = self._plan(cid, b)
            if not self._admit(r, cid, b, rec, plan):
                continue
            work = _Work(rec)
            procs[cid] = env.process(self._client(r, cid, b, work, plan, deadline_at, arrived))
            self.working[cid] = procs[cid]

        held, self._held = self._held, None
        if not procs and records and all(rec.status == BATTERY for rec in records.values()):
            if not self._battery_waiting:  # log the first attempt of a waiting stretch only
                for event in held:
                    self.observer.on_event(event)
                self._emit("battery_wait", r, clients=selected)
                self._battery_waiting = True
            return False
        for event in held:
            self.observer.on_event(event)
        self._battery_waiting = False
        if procs:
            everyone = env.all_of(list(procs.values()))
            waits = [everyone]
            if cfg.over_commit > 0:
                waits.append(enough)
            if deadline_at is not None:
                waits.append(env.timeout(max(0.0, deadline_at - env.now)))
            yield env.any_of(waits)
            late = [cid for cid, p in procs.items() if p.is_alive]
            cause = "deadline" if not enough.triggered else "over-commit"
            for cid in late:
                procs[cid].interrupt(cause)
            if late:
                yield env.all_of([procs[cid] for cid in late])
        t_end = env.now
        for cid in procs:
            self.working.pop(cid, None)

        # Clients that reported wait idle for the round to close.
        for cid in arrivals:
            rec = records[cid]
            idle_s = max(0.0, t_end - (rec.finished_s or t_end))
            rec.idle_s = idle_s
            e = idle_s * self.cost.idle_power_w(cid)
            rec.charge("idle", e)
            self._drain(cid, e)

        round_energy = sum(rec.energy_j for rec in records.values())
        self.fleet_energy_j += round_energy
        reported = sorted(arrivals)
        if reported:
            self.port.aggregate(r, [(r, cid, 0) for cid in reported])  # ids only
        self._emit("aggregate", r, clients=reported)
        ev = self.port.evaluate(r)
        for cid in selected:
            rec = records[cid]
            if self._has_battery(cid):
                rec.battery_j = self.dynamics[cid].battery_level_j
            self.observer.on_client(rec)
        self._emit("round_end", r, accuracy=ev.accuracy, loss=ev.loss,
                   energy_j=round_energy, participants=len(reported))
        self._record_round(r, t_end, t0, energy_before, ev, list(records.values()),
                           len(reported), len(selected))
        return True

    def _record_round(self, r: int, t_end: float, t0: float, energy_before: float, ev: Any,
                      recs: Sequence[ClientRoundRecord], participants: int,
                      selected: int) -> None:
        def count(status: str) -> int:
            return sum(1 for rec in recs if rec.status == status)

        self.rounds_done += 1
        self.observer.on_round(
            RoundRecord(
                round=r, sim_time_s=t_end, energy_j=self.fleet_energy_j,
                accuracy=ev.accuracy, loss=ev.loss, participants=participants,
                stragglers=count(STRAGGLER), selected=selected, infeasible=count(INFEASIBLE),
                round_s=t_end - t0, round_energy_j=self.fleet_energy_j - energy_before,
                dropouts=count(DROPOUT), offline=count(OFFLINE), battery=count(BATTERY),
                metrics=dict(ev.metrics),
            )
        )

    # -- one client's work ----------------------------------------------------------------------
    def _phase(self, w: _Work, name: str, duration: float, energy: float):  # type: ignore[no-untyped-def]
        """Spend ``duration`` seconds and ``energy`` joules, or empty the battery trying."""
        cid = w.rec.client_id
        w.phase, w.phase_start = name, self.env.now
        w.phase_duration, w.phase_energy = duration, energy
        spendable = self._spendable_j(cid)
        if energy > spendable and energy > 0:
            cut = duration * max(0.0, spendable) / energy
            yield self.env.timeout(cut)
            raise _BatteryEmpty()
        yield self.env.timeout(duration)
        w.rec.charge(name, energy)
        self._drain(cid, energy)
        if name == "compute":
            w.rec.compute_s += duration
        else:
            w.rec.comm_s += duration
        w.phase = None

    def _client(  # type: ignore[no-untyped-def]
        self, r: int, cid: int, bits: tuple[int, ...], w: _Work, plan: dict[str, Any],
        deadline_at: float | None, on_arrival: Callable[[int], None], attempt: int = 0,
    ):
        env = self.env
        rec = w.rec
        p = self.dynamics[cid].failure_prob
        if p > 0:
            g = rng(self.config.seed, "failure", r, cid, attempt)
            if g.uniform() < p:
                at = env.now + g.uniform() * plan["time_s"]
                env.process(self._fail_at(env.active_process, at))
        try:
            down = plan["down"]
            rec.bits_down_payload = down.payload_bits
            yield from self._phase(w, "downlink", down.time_s, down.energy_j)
            self._emit("downlink_end", r, cid, duration_s=down.time_s,
                       payload_bits=down.payload_bits, energy_j=down.energy_j)

            comp = plan["comp"]
            fits = deadline_at is None or env.now + comp.time_s <= deadline_at
            fits = fits and comp.energy_j <= self._spendable_j(cid)
            if fits:
                w.item = WorkItem(
                    round=r, client_id=cid, bits=bits, samples=self.clients[cid].samples,
                    epochs=self.config.epochs, steps=plan["steps"],
                    seed=derive_seed(self.config.seed, "train", r, cid, attempt)
                    if attempt else derive_seed(self.config.seed, "train", r, cid),
                    attempt=attempt,
                )
                w.handle = self.port.submit(w.item)
            yield from self._phase(w, "compute", comp.time_s, comp.energy_j)
            self._emit("compute_end", r, cid, duration_s=comp.time_s, energy_j=comp.energy_j,
                       steps=plan["steps"])

            assert w.handle is not None  # a client that could not finish was interrupted
            result = w.handle.result()
            w.consumed = True
            w.result = result
            self.selection_state.last_loss[cid] = result.train_loss
            self.selection_state.expected_s[cid] = plan["time_s"]
            rec.bits_up = tuple(result.bits_up)
            rec.avg_bits_up = self.cost.avg_bits(result.bits_up)
            up = self.cost.transfer(cid, result.bits_up, "up")
            rec.bits_up_payload = up.payload_bits
            yield from self._phase(w, "uplink", up.time_s, up.energy_j)
            self._emit("uplink_end", r, cid, duration_s=up.time_s,
                       payload_bits=up.payload_bits, energy_j=up.energy_j)
            rec.status = OK
            rec.finished_s = env.now
            on_arrival(cid)
        except (simpy.Interrupt, _BatteryEmpty) as exc:
            cause = "battery" if isinstance(exc, _BatteryEmpty) else str(exc.cause)
            self._abort(r, w, cause)

    def _abort(self, r: int, w: _Work, cause: str) -> None:
        """Charge the part of the current phase already done; record why the work stopped."""
        rec = w.rec
        cid = rec.client_id
        done = self.env.now - w.phase_start
        if w.phase is not None:
            if cause == "battery":
                e = max(0.0, self._spendable_j(cid))
            else:
                frac = min(1.0, done / w.phase_duration) if w.phase_duration > 0 else 1.0
                e = w.phase_energy * frac
            rec.charge(w.phase, e)
            self._drain(cid, e)
            if w.phase == "compute":
                rec.compute_s += done
            else:
                rec.comm_s += done
        rec.status = _CAUSE_STATUS.get(cause, STRAGGLER)
        rec.reason = cause
        rec.finished_s = self.env.now
        if w.item is not None and not w.consumed:
            self.port.discard(w.item.key)
        self._emit(rec.status, r, cid, phase=w.phase, cause=cause, energy_j=rec.energy_j)

    def _fail_at(self, proc: simpy.Process, at: float):  # type: ignore[no-untyped-def]
        yield self.env.timeout(max(0.0, at - self.env.now))
        if proc.is_alive:
            proc.interrupt("failure")

    # -- asynchronous (FedBuff) -------------------------------------------------------------------
    def _async_server(self):  # type: ignore[no-untyped-def]
        env = self.env
        cfg = self.config
        version = self.start_round
        store: simpy.Store = simpy.Store(env)
        buffer: list[tuple[tuple[int, int, int], int, ClientRoundRecord]] = []
        pending: list[ClientRoundRecord] = []
        in_flight: dict[int, simpy.Process] = {}
        flight_work: dict[int, _Work] = {}
        t0, energy_before, picks = env.now, self.fleet_energy_j, 0
        waited = 0.0
        while version < cfg.rounds:
            free = cfg.concurrency - len(in_flight)
            cands = self.candidates()
            if free > 0 and cands:
                chosen = self.policy(cands, min(free, len(cands)),
                                     rng(cfg.seed, "select-async", version, picks),
                                     self.selection_state)
                picks += 1
                bits = self.port.downlink_bits(version, chosen)
                for cid in chosen:
                    b = tuple(bits[cid])
                    rec = self._new_record(version, cid, b)
                    plan = self._plan(cid, b)
                    self._emit("dispatch", version, cid)
                    if not self._admit(version, cid, b, rec, plan):
                        self._excluded_until[cid] = env.now + cfg.wait_s
                        self._finish_async_record(rec, pending)
                        continue
                    attempt = self._attempts.get((version, cid), -1) + 1
                    self._attempts[(version, cid)] = attempt
                    w = _Work(rec)
                    w.extra["version"] = version
                    proc = env.process(self._client(
                        version, cid, b, w, plan, None,
                        lambda c, w=w: store.put(w), attempt=attempt))
                    self.working[cid] = proc
                    in_flight[cid] = proc
                    flight_work[cid] = w
                    env.process(self._async_watch(proc, w, store))
            if not in_flight:
                if waited >= cfg.max_wait_s:
                    self.stopped_reason = "no client available"
                    self._emit("stopped", version, reason=self.stopped_reason)
                    return
                yield env.timeout(cfg.wait_s)
                waited += cfg.wait_s
                continue
            waited = 0.0
            w = yield store.get()
            cid = w.rec.client_id
            in_flight.pop(cid, None)
            flight_work.pop(cid, None)
            self.working.pop(cid, None)
            if w.rec.status != OK:
                self._finish_async_record(w.rec, pending)
                continue
            assert w.item is not None
            buffer.append((w.item.key, w.extra["version"], w.rec))
            if len(buffer) < cfg.buffer_k:
                continue
            keys = [k for k, _, _ in buffer]
            stale = [version - v for _, v, _ in buffer]
            for (_, _, rec), s in zip(buffer, stale, strict=True):
                rec.staleness = s
                rec.round = version
            self.port.aggregate_async(version, keys, stale)
            self._emit("aggregate", version, clients=[k[1] for k in keys], staleness=stale)
            if version + 1 >= cfg.rounds:
                # The run ends here: work still in flight is stopped now, charged and
                # recorded as stale in this last round.
                for proc in list(in_flight.values()):
                    if proc.is_alive:
                        proc.interrupt("end of run")
                if in_flight:
                    yield env.all_of(list(in_flight.values()))
                for cid2, w2 in sorted(flight_work.items()):
                    w2.rec.round = version
                    pending.append(w2.rec)
                    self.working.pop(cid2, None)
                in_flight.clear()
                flight_work.clear()
            ev = self.port.evaluate(version)
            recs = [rec for _, _, rec in buffer] + pending
            for rec in recs:
                self._finish_async_record(rec, None)
            round_energy = sum(rec.energy_j for rec in recs)
            self.fleet_energy_j += round_energy
            self._emit("round_end", version, accuracy=ev.accuracy, loss=ev.loss,
                       energy_j=round_energy, participants=len(buffer))
            self._record_round(version, env.now, t0, energy_before, ev, recs, len(buffer),
                               len(recs))
            buffer, pending = [], []
            t0, energy_before = env.now, self.fleet_energy_j
            version += 1

    def _async_watch(self, proc: simpy.Process, w: _Work, store: simpy.Store):  # type: ignore[no-untyped-def]
        """Forward a client task that ended without reporting to the server's queue."""
        yield proc
        if w.rec.status != OK and w.rec.reason != "end of run":
            store.put(w)

    def _finish_async_record(self, rec: ClientRoundRecord,
                             pending: list[ClientRoundRecord] | None) -> None:
        if pending is not None:
            pending.append(rec)
            return
        if self._has_battery(rec.client_id):
            rec.battery_j = self.dynamics[rec.client_id].battery_level_j
        self.observer.on_client(rec)


def round_time(t: float) -> float:
    """Event timestamps rounded to the nanosecond so text files stay stable and short."""
    return round(float(t), 9)
