"""The discrete-event engine: a server process drives rounds, one process per client.

The story of a synchronous round (FedAvg / FedMPQ), told in :mod:`fedsim.engine.sync`:

1. The server picks clients among those online and able to pay the round (selection policy,
   seeded stream per round; with over-commit it picks more than it needs) and asks the
   algorithm, through the trainer port, for each client's downlink bit vector.
2. A client whose training configuration does not fit its usable memory, or whose battery
   cannot pay the round's planned energy, is not scheduled (recorded with the reason).
3. Each scheduled client (:mod:`fedsim.engine.client`): downlink, local compute, uplink. The
   compute time is known from the cost model *before* training, so a client that cannot
   finish before the deadline never trains on the host; it works (and spends energy) until
   the deadline interrupts it. A failure (per-round probability) strikes at a random point of
   the planned work; going offline or an empty battery interrupts it at that simulated moment.
   Energy spent so far is always charged.
4. The round closes when every client reported, the first ``per_round`` arrivals are in
   (over-commit), or the deadline fired; the others are interrupted.
5. The server aggregates the reports (ids only cross the port), evaluates, records.

Asynchronous mode (FedBuff, Nguyen et al. 2022, :mod:`fedsim.engine.fedbuff`): up to
``concurrency`` clients train at once; each report enters a buffer; every ``buffer_k`` reports
the server aggregates them with a staleness weight and a new model version starts. Results are
applied in simulated-time order.

Side processes (:mod:`fedsim.engine.dynamics`): one per client for availability (walks its
online windows) and one per battery that recharges on a schedule. No torch and no host clock:
durations come only from the cost oracle, so the executor behind the port never changes the
outcome.

This module holds what both servers share: the engine's state, its event log, selection,
checkpoints, and the closing of a round into records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import simpy

from fedsim.engine.availability import AlwaysOn, AvailabilityModel
from fedsim.engine.batchsync import BatchSyncServer, batch_supported
from fedsim.engine.dynamics import Batteries, ClientDynamics, follow_availability
from fedsim.engine.fedbuff import FedBuffServer
from fedsim.engine.records import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    STRAGGLER,
    ClientRoundRecord,
    Observer,
    RoundRecord,
)
from fedsim.engine.selection import POLICIES, SelectionState
from fedsim.engine.sync import SyncServer
from fedsim.engine.types import ClientDesc, CostOracle, EvalResult, PendingEval, TrainerPort
from fedsim.seeding import rng


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
    vectorised: bool = False  # whole rounds as arrays where supported (engine.batchsync)


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
        self.batteries = Batteries(self.dynamics)
        self.start_round = start_round
        self.env = simpy.Environment(initial_time=start_time_s)
        self.fleet_energy_j = start_energy_j
        # vectorised rounds keep their own arrays: no per-client dicts for 10^6 clients
        self.vectorised = config.vectorised and self.why_not_vectorised() is None
        per_client = not self.vectorised
        self.online = (dict.fromkeys(self.client_ids, not self.track_availability)
                       if per_client else {})
        self.working: dict[int, simpy.Process] = {}
        self.policy = POLICIES[config.policy]
        self.selection_state = SelectionState(
            battery_j=self.batteries.view() if per_client else {},
            samples={c.client_id: c.samples for c in clients} if per_client else {},
        )
        self.stopped_reason: str | None = None
        self.rounds_done = 0
        self._held: list[dict[str, Any]] | None = None  # events of a round not yet committed
        # async: a client that could not be admitted is not offered again for wait_s
        self.excluded_until: dict[int, float] = {}
        self._batch: Any = None  # the vectorised server, when running one

    def set_budget(self, cid: int, budget_bits: float) -> None:
        """Change a client's bit budget between its tasks (battery-adaptive budgets): its
        next record carries the new value."""
        self.clients[cid] = replace(self.clients[cid], budget_bits=budget_bits)

    # -- checkpoint support -------------------------------------------------------------------
    def snapshot(self, next_round: int) -> dict[str, Any]:
        """Engine state at a round boundary (plain values: safe to checkpoint)."""
        return {
            "next_round": next_round,
            "now": float(self.env.now),
            "fleet_energy_j": float(self.fleet_energy_j),
            "battery": (self._batch.pop.battery_snapshot() if self._batch is not None
                        else self.batteries.snapshot()),
            "last_loss": {str(c): float(v) for c, v in self.selection_state.last_loss.items()},
            "expected_s": {str(c): float(v)
                           for c, v in self.selection_state.expected_s.items()},
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Continue from :meth:`snapshot` (the constructor already set round, time, energy)."""
        self.batteries.restore(snap.get("battery", {}))
        self.selection_state.last_loss.update(
            {int(c): float(v) for c, v in snap.get("last_loss", {}).items()})
        self.selection_state.expected_s = {
            int(c): float(v) for c, v in snap.get("expected_s", {}).items()}

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        server = self._server()
        if not isinstance(server, BatchSyncServer):
            if self.track_availability:
                for cid in self.client_ids:
                    self.env.process(follow_availability(self.env, self.availability, cid,
                                                         self.online, self.working))
            self.batteries.start_recharging(self.env)
        proc = self.env.process(server.run())
        try:
            self.env.run(until=proc)
        finally:
            if isinstance(server, BatchSyncServer):
                server.finish()

    def _server(self) -> Any:
        """The server process: vectorised rounds when asked for and supported."""
        if self.vectorised:
            self._batch = BatchSyncServer(self)
            return self._batch
        return FedBuffServer(self) if self.config.mode == "async" else SyncServer(self)

    def why_not_vectorised(self) -> str | None:
        """Why this run cannot use vectorised rounds (None: it can)."""
        return batch_supported(self)

    # -- the event log --------------------------------------------------------------------------
    def emit(self, kind: str, round: int, client: int | None = None, **fields: Any) -> None:
        event: dict[str, Any] = {"t": round_time(self.env.now), "round": round, "kind": kind}
        if client is not None:
            event["client"] = client
        event.update(fields)
        if self._held is not None:
            self._held.append(event)
        else:
            self.observer.on_event(event)

    def hold_events(self) -> None:
        """Keep events back until the caller knows whether they happened (see release)."""
        self._held = []

    def release_events(self, publish: bool) -> None:
        """Stop holding; pass the held events on, or drop them (a round that is retried)."""
        held, self._held = self._held or [], None
        if publish:
            for event in held:
                self.observer.on_event(event)

    # -- shared by both servers -----------------------------------------------------------------
    def candidates(self) -> list[int]:
        """Clients online now whose battery is above its floor, and not already working."""
        now = self.env.now
        return [cid for cid in self.client_ids
                if self.online[cid] and cid not in self.working
                and self.batteries.spendable_j(cid) > 0
                and self.excluded_until.get(cid, -1.0) <= now]

    def select(self, round: int, cands: Sequence[int], k: int) -> list[int]:
        """Seeded choice (its own stream per round: nothing else shifts it)."""
        self.selection_state.battery_j = self.batteries.view()
        return self.policy(list(cands), k, rng(self.config.seed, "select", round),
                           self.selection_state)

    def wait_or_stop(self, round: int, waited: float,
                     reason: str) -> Generator[simpy.Event, Any, bool]:
        """Wait ``wait_s`` more for something to change, or stop the run (returns False) once
        ``max_wait_s`` has already passed, so an idle fleet cannot spin forever."""
        if waited >= self.config.max_wait_s:
            self.stopped_reason = reason
            self.emit("stopped", round, reason=reason)
            return False
        yield self.env.timeout(self.config.wait_s)
        return True

    def close_round(self, r: int, ev: EvalResult | PendingEval,
                    recs: Sequence[ClientRoundRecord], participants: int, t0: float,
                    energy_before: float) -> None:
        """Publish the round's client records (with battery levels), bill the fleet, and record
        the round. ``recs`` holds every client the round selected, reported or not.

        ``ev`` may still be pending (the port evaluates while the next round trains): the
        observer then holds the round's last records and everything after them until the
        result is in (``hold``), so the files come out in the same order either way."""
        for rec in recs:
            if self.batteries.has(rec.client_id):
                rec.battery_j = self.dynamics[rec.client_id].battery_level_j
            self.observer.on_client(rec)
        round_energy = sum(rec.energy_j for rec in recs)
        self.fleet_energy_j += round_energy
        event: dict[str, Any] = {"t": round_time(self.env.now), "round": r, "kind": "round_end",
                                 "accuracy": None, "loss": None, "energy_j": round_energy,
                                 "participants": participants}

        def count(status: str) -> int:
            return sum(1 for rec in recs if rec.status == status)

        t_end = self.env.now
        self.rounds_done += 1
        record = RoundRecord(
            round=r, sim_time_s=t_end, energy_j=self.fleet_energy_j,
            accuracy=math.nan, loss=math.nan, participants=participants,
            stragglers=count(STRAGGLER), selected=len(recs), infeasible=count(INFEASIBLE),
            round_s=t_end - t0, round_energy_j=self.fleet_energy_j - energy_before,
            dropouts=count(DROPOUT), offline=count(OFFLINE), battery=count(BATTERY),
        )

        def publish(result: EvalResult) -> None:
            event["accuracy"], event["loss"] = result.accuracy, result.loss
            self.observer.on_event(event)
            self.observer.on_round(replace(record, accuracy=result.accuracy,
                                           loss=result.loss, metrics=dict(result.metrics)))

        hold = getattr(self.observer, "hold", None)
        if isinstance(ev, EvalResult) or hold is None:
            publish(ev if isinstance(ev, EvalResult) else ev.result())
        else:
            hold(r, ev, publish)


def round_time(t: float) -> float:
    """Event timestamps rounded to the nanosecond so text files stay stable and short."""
    return round(float(t), 9)
