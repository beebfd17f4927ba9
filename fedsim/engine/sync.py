"""Synchronous rounds (FedAvg / FedMPQ): select, run the clients, close, repeat.

A round closes when every scheduled client reported, when the first ``per_round`` arrivals
are in (over-commit), or when the deadline fires; whoever is still working is interrupted
and recorded as a straggler. Clients that reported idle (and spend idle power) until then.

Why a round can be taken back: when nobody selected can pay the round from its battery, the
server waits ``wait_s`` for recharging and draws again. Its events are held until that is
known, and only the first attempt of such a waiting stretch is logged, so a long wait does
not flood the event log with identical non-rounds.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import ProcessGenerator

from fedsim.engine.client import ClientTask
from fedsim.engine.records import BATTERY

if TYPE_CHECKING:
    from fedsim.engine.core import Engine


@dataclass
class _Round:
    """One round's working set, from selection to close."""

    r: int
    t0: float
    energy_before: float
    selected: list[int]
    target: int  # arrivals that close the round early
    deadline_at: float | None
    enough: simpy.Event  # fires when ``target`` clients have arrived
    tasks: dict[int, ClientTask] = field(default_factory=dict)  # every selected client
    procs: dict[int, simpy.Process] = field(default_factory=dict)  # those admitted
    arrivals: list[int] = field(default_factory=list)

    def arrived(self, cid: int) -> None:
        self.arrivals.append(cid)
        if len(self.arrivals) >= self.target and not self.enough.triggered:
            self.enough.succeed()


class SyncServer:
    """The server process of synchronous mode."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.battery_waiting = False  # inside a stretch of rounds nobody could pay

    def run(self) -> ProcessGenerator:
        eng = self.eng
        r = eng.start_round
        waited = 0.0
        while r < eng.config.rounds:
            ok = yield from self._wait_for_clients(r)
            if not ok:
                return
            done = yield from self._round(r)
            if done:
                r, waited = r + 1, 0.0
                continue
            # Nobody selected could pay the round: wait for batteries to recharge.
            reason = (f"no selected client could pay round {r} for {waited:.0f} s of "
                      f"simulated time")
            if not (yield from eng.wait_or_stop(r, waited, reason)):
                return
            waited += eng.config.wait_s

    def _wait_for_clients(self, r: int) -> Generator[simpy.Event, Any, bool]:
        """Wait (in simulated time) until some client can work; False if none ever can."""
        eng = self.eng
        waited = 0.0
        while not self._any_candidate():
            reason = (f"no client available for {waited:.0f} s of simulated time before "
                      f"round {r}")
            if not (yield from eng.wait_or_stop(r, waited, reason)):
                return False
            waited += eng.config.wait_s
        return True

    def _any_candidate(self) -> bool:
        """Some client could be selected now."""
        return bool(self.eng.candidates())

    def _round(self, r: int) -> Generator[simpy.Event, Any, bool]:
        """Run round ``r``; False when it did not happen (nobody could pay: try again)."""
        rnd = self._open(r)
        if not self._goes_ahead(rnd):
            return False
        yield from self._await_close(rnd)
        self._close(rnd)
        return True

    def _open(self, r: int) -> _Round:
        """Select the clients, get their downlink bits, and start those admitted."""
        eng, cfg, env = self.eng, self.eng.config, self.eng.env
        t0 = env.now
        energy_before = eng.fleet_energy_j
        cands = eng.candidates()
        k = min(cfg.per_round, len(cands))
        k_sel = min(len(cands), math.ceil(k * (1 + cfg.over_commit)))
        selected = eng.select(r, cands, k_sel)
        eng.hold_events()  # until we know this round goes ahead (not a battery retry)
        eng.emit("round_start", r, selected=selected)
        bits = eng.port.downlink_bits(r, selected)
        rnd = _Round(r, t0, energy_before, selected,
                     target=k if cfg.over_commit > 0 else len(selected),
                     deadline_at=t0 + cfg.deadline_s if cfg.deadline_s else None,
                     enough=env.event())
        for cid in selected:
            task = ClientTask(eng, r, cid, tuple(bits[cid]))
            rnd.tasks[cid] = task
            if task.admit():
                rnd.procs[cid] = task.start(rnd.deadline_at, rnd.arrived)
        return rnd

    def _goes_ahead(self, rnd: _Round) -> bool:
        """Commit the held events, unless every selected client was refused for battery."""
        eng = self.eng
        if not rnd.procs and rnd.tasks and all(
                t.rec.status == BATTERY for t in rnd.tasks.values()):
            first = not self.battery_waiting  # log the first attempt of a waiting stretch only
            eng.release_events(publish=first)
            if first:
                eng.emit("battery_wait", rnd.r, clients=rnd.selected)
                self.battery_waiting = True
            return False
        eng.release_events(publish=True)
        self.battery_waiting = False
        return True

    def _await_close(self, rnd: _Round) -> ProcessGenerator:
        """Wait for everyone, enough arrivals or the deadline; interrupt who is still late."""
        env, procs = self.eng.env, rnd.procs
        if not procs:
            return
        waits: list[simpy.Event] = [env.all_of(list(procs.values()))]
        if self.eng.config.over_commit > 0:
            waits.append(rnd.enough)
        if rnd.deadline_at is not None:
            waits.append(env.timeout(max(0.0, rnd.deadline_at - env.now)))
        yield env.any_of(waits)
        late = [cid for cid, p in procs.items() if p.is_alive]
        cause = "deadline" if not rnd.enough.triggered else "over-commit"
        for cid in late:
            procs[cid].interrupt(cause)
        if late:
            yield env.all_of([procs[cid] for cid in late])

    def _close(self, rnd: _Round) -> None:
        """Charge idle waiting, aggregate the reports (ids only), evaluate, record."""
        eng, r = self.eng, rnd.r
        t_end = eng.env.now
        for cid in rnd.procs:
            eng.working.pop(cid, None)
        # Clients that reported wait idle for the round to close.
        for cid in rnd.arrivals:
            task = rnd.tasks[cid]
            idle_s = max(0.0, t_end - (task.rec.finished_s or t_end))
            task.spend("idle", idle_s, idle_s * eng.cost.idle_power_w(cid))
        reported = sorted(rnd.arrivals)
        if reported:
            eng.port.aggregate(r, [(r, cid, 0) for cid in reported])
        eng.emit("aggregate", r, clients=reported)
        ev = eng.port.evaluate(r)
        eng.close_round(r, ev, [t.rec for t in rnd.tasks.values()], len(reported),
                        rnd.t0, rnd.energy_before)
