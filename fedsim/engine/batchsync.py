"""Synchronous rounds computed as arrays: the system-only engine at population scale.

Why: in a system-only run nothing a client does depends on another client's *result*, only
on the round's close, so a whole round of downlinks, computes, uplinks, failures, battery
cuts, departures and the deadline can be worked out as arrays with the cost model's
per-cohort answers (:mod:`fedsim.engine.population`), in the order SimPy would have
processed them. The server is still a SimPy process: it advances the engine's clock to the
round's close with a timeout, so the engine stays the one source of simulated time.

It reproduces the per-client engine (:mod:`fedsim.engine.sync` + :mod:`fedsim.engine.client`)
event for event (tests compare the two), including the tie order of events at the same
instant (SimPy orders them by time, then by when they were scheduled: a phase's end is
scheduled when the previous phase ended, so ties are broken by the chain of earlier phase
ends). It supports what population studies use: random selection, over-commitment,
deadlines, failures, batteries without recharge windows, and every availability model.
Other settings (recharging batteries, utility-based selection, battery-adaptive budgets,
asynchronous FedBuff) run on the per-client engine (:func:`batch_supported` says which).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from fedsim.engine.batchplan import (
    RoundPlan,
    Timeline,
    client_batch,
    plan_round,
    play_round,
    timeline_events,
)
from fedsim.engine.columns import ClientBatch, EventBatch
from fedsim.engine.population import OnlineCursor, Population
from fedsim.engine.records import RoundRecord
from fedsim.engine.sync import SyncServer
from fedsim.records.schema import STATUSES
from fedsim.seeding import rng

if TYPE_CHECKING:
    from fedsim.engine.core import Engine


def batch_supported(eng: Engine) -> str | None:
    """Why this engine cannot run vectorised rounds (None: it can)."""
    cfg = eng.config
    if cfg.mode != "sync":
        return "asynchronous (FedBuff) mode"
    if cfg.policy != "random":
        return f"selection policy '{cfg.policy}'"
    if not getattr(eng.port, "synthetic", False):
        return "a port that trains (vectorised rounds are for system-only runs)"
    if not hasattr(eng.cost, "transfer_many"):
        return "a cost oracle without batch transfers"
    if any(d.recharge is not None and d.battery_capacity_j is not None
           for d in eng.dynamics.values()):
        return "batteries with recharge windows"
    return None


class BatchSyncServer(SyncServer):
    """The server process of synchronous mode, one array computation per round (the
    round loop, battery retries and waits are :class:`SyncServer`'s)."""

    def __init__(self, eng: Engine) -> None:
        super().__init__(eng)
        self.pop = Population(eng.clients, eng.client_ids, eng.dynamics)
        self.cursor = OnlineCursor(eng.availability, self.pop.ids)
        self._cands: tuple[float, np.ndarray, np.ndarray] | None = None

    def finish(self) -> None:
        """Leave the battery levels where the per-client engine leaves them."""
        self.pop.write_back(self.eng.dynamics)

    # -- selection --------------------------------------------------------------------------
    def _candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the clients online with energy above their floor; every window's end.
        (Asked twice at the same instant before a round: computed once.)"""
        now = self.eng.env.now
        if self._cands is not None and self._cands[0] == now:
            return self._cands[1], self._cands[2]
        online, ends = self.cursor.windows_at(now)
        if self.pop.any_battery:
            online &= self.pop.spendable() > 0
        cands = self.pop.ids[online]
        self._cands = (now, cands, ends)
        return cands, ends

    def _any_candidate(self) -> bool:
        return bool(len(self._candidates()[0]))

    def _select(self, r: int, cands: np.ndarray, k: int) -> np.ndarray:
        """The random policy on arrays (the same draws as ``selection.random_policy``)."""
        if k >= len(cands):
            return cands
        idx = rng(self.eng.config.seed, "select", r).choice(len(cands), size=k, replace=False)
        return np.sort(cands[idx])

    # -- one round --------------------------------------------------------------------------
    def _round(self, r: int) -> Generator[simpy.Event, Any, bool]:
        eng, cfg = self.eng, self.eng.config
        t0, energy_before = float(eng.env.now), eng.fleet_energy_j
        cands, ends = self._candidates()
        k = min(cfg.per_round, len(cands))
        selected = self._select(r, cands, min(len(cands), math.ceil(k * (1 + cfg.over_commit))))
        plan = plan_round(eng, self.pop, r, selected, t0)
        if not plan.admitted.any() and len(selected) and plan.battery_refused.all():
            if not self.battery_waiting:  # log the first attempt of a waiting stretch only
                eng.emit("round_start", r, selected=selected.tolist())
                self._publish(plan.admission_events(r))
                eng.emit("battery_wait", r, clients=selected.tolist())
                self.battery_waiting = True
            return False
        self.battery_waiting = False
        eng.emit("round_start", r, selected=selected.tolist())
        self._publish(plan.admission_events(r))
        target = k if cfg.over_commit > 0 else len(selected)
        deadline_at = t0 + cfg.deadline_s if cfg.deadline_s else None
        tl = play_round(eng, self.pop, plan, ends, target, deadline_at,
                        over_commit=cfg.over_commit > 0)
        self._cands = None  # batteries changed
        yield eng.env.timeout(_delay_to(t0, tl.t_end))
        self._publish(timeline_events(tl, r))
        self._close(r, plan, tl, t0, energy_before)
        return True

    def _publish(self, batch: EventBatch) -> None:
        if not len(batch):
            return
        sink = getattr(self.eng.observer, "on_events", None)
        if sink is not None:
            sink(batch)
        else:
            for event in batch.dicts():
                self.eng.observer.on_event(event)

    def _close(self, r: int, plan: RoundPlan, tl: Timeline, t0: float,
               energy_before: float) -> None:
        """Records, the fleet's bill and the round, as ``Engine.close_round`` does."""
        eng = self.eng
        reported = np.sort(plan.selected[tl.arrived_rows])
        eng.emit("aggregate", r, clients=reported.tolist())
        ev = eng.port.evaluate(r)
        clients = client_batch(tl, self.pop, r)
        sink = getattr(eng.observer, "on_clients", None)
        if sink is not None:
            sink(clients)
        else:
            for rec in clients.records():
                eng.observer.on_client(rec)
        round_energy = sum(clients.column("energy_j"))  # Python's sum, as close_round
        eng.fleet_energy_j += round_energy
        eng.emit("round_end", r, accuracy=ev.accuracy, loss=ev.loss, energy_j=round_energy,
                 participants=len(reported))
        counts = _status_counts(clients)
        t_end = eng.env.now
        eng.rounds_done += 1
        eng.observer.on_round(RoundRecord(
            round=r, sim_time_s=t_end, energy_j=eng.fleet_energy_j, accuracy=ev.accuracy,
            loss=ev.loss, participants=len(reported), stragglers=counts["straggler"],
            selected=len(plan.selected), infeasible=counts["infeasible"], round_s=t_end - t0,
            round_energy_j=eng.fleet_energy_j - energy_before, dropouts=counts["dropout"],
            offline=counts["offline"], battery=counts["battery"], metrics=dict(ev.metrics)))


def _status_counts(batch: ClientBatch) -> dict[str, int]:
    return {name: batch.status_counts().get(name, 0) for name in STATUSES}


def _delay_to(now: float, t: float) -> float:
    """A delay that lands exactly on ``t`` (SimPy adds it to ``now``; ``t - now`` may be an
    ulp off, which would shift every later timestamp)."""
    d = max(0.0, t - now)
    for _ in range(4):
        landed = now + d
        if landed == t:
            break
        d = np.nextafter(d, math.inf if landed < t else -math.inf)
    return float(d)
