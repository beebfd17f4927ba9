"""Asynchronous mode: buffered asynchronous aggregation (FedBuff, Nguyen et al. 2022).

Up to ``concurrency`` clients train at once, each on the model version current when it was
dispatched. Reports queue up at the server in simulated-time order; every ``buffer_k``
successful reports are aggregated with their staleness (versions since download) and a new
model version starts, which is what a "round" means here. A report that failed is recorded
in the version during which it ended.

Why the admission back-off: a client refused (memory, battery) is not offered again for
``wait_s``, or the server would pick it again at once, forever. Why the end-of-run stop: work
still in flight after the last aggregation can never count, so it is interrupted then,
charged, and recorded as stale in the last version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import simpy
from simpy.events import ProcessGenerator

from fedsim.engine.client import ClientTask
from fedsim.engine.records import OK, ClientRoundRecord
from fedsim.seeding import rng

if TYPE_CHECKING:
    from fedsim.engine.core import Engine


class FedBuffServer:
    """The server process of asynchronous mode, with its buffer and the tasks in flight."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.version = eng.start_round
        self.store: simpy.Store = simpy.Store(eng.env)  # tasks that ended, in time order
        self.buffer: list[ClientTask] = []  # successful reports not yet aggregated
        self.pending: list[ClientRoundRecord] = []  # the others, recorded with the next version
        self.in_flight: dict[int, ClientTask] = {}
        self.attempts: dict[tuple[int, int], int] = {}  # tasks per (version, client)
        self.picks = 0  # selection draws so far (each has its own seeded stream)
        self.t0 = eng.env.now
        self.energy_before = eng.fleet_energy_j

    def run(self) -> ProcessGenerator:
        eng, cfg = self.eng, self.eng.config
        waited = 0.0
        while self.version < cfg.rounds:
            self._dispatch()
            if not self.in_flight:
                if not (yield from eng.wait_or_stop(self.version, waited, "no client available")):
                    return
                waited += cfg.wait_s
                continue
            waited = 0.0
            task = yield self.store.get()
            if self._receive(task) and len(self.buffer) >= cfg.buffer_k:
                yield from self._aggregate()

    def _dispatch(self) -> None:
        """Fill the free training slots from the candidates."""
        eng, cfg = self.eng, self.eng.config
        free = cfg.concurrency - len(self.in_flight)
        cands = eng.candidates()
        if free <= 0 or not cands:
            return
        # The policy sees the battery view as the engine last refreshed it.
        chosen = eng.policy(cands, min(free, len(cands)),
                            rng(cfg.seed, "select-async", self.version, self.picks),
                            eng.selection_state)
        self.picks += 1
        bits = eng.port.downlink_bits(self.version, chosen)
        for cid in chosen:
            self._launch(cid, tuple(bits[cid]))

    def _launch(self, cid: int, bits: tuple[int, ...]) -> None:
        eng, version = self.eng, self.version
        task = ClientTask(eng, version, cid, bits)
        eng.emit("dispatch", version, cid)
        if not task.admit():
            eng.excluded_until[cid] = eng.env.now + eng.config.wait_s
            self.pending.append(task.rec)
            return
        attempt = self.attempts.get((version, cid), -1) + 1
        self.attempts[(version, cid)] = attempt
        task.start(None, lambda _cid: self.store.put(task), attempt=attempt)
        self.in_flight[cid] = task
        eng.env.process(self._watch(task))

    def _watch(self, task: ClientTask) -> ProcessGenerator:
        """Forward a client task that ended without reporting to the server's queue."""
        yield task.proc
        if task.rec.status != OK and task.rec.reason != "end of run":
            self.store.put(task)

    def _receive(self, task: ClientTask) -> bool:
        """Take an ended task off the flight list; True if its report enters the buffer."""
        self.in_flight.pop(task.cid, None)
        self.eng.working.pop(task.cid, None)
        if task.rec.status != OK:
            self.pending.append(task.rec)
            return False
        self.buffer.append(task)
        return True

    def _aggregate(self) -> ProcessGenerator:
        """Aggregate the buffer into a new model version and close this one into records."""
        eng, version = self.eng, self.version
        keys = [t.key for t in self.buffer]
        stale = [version - t.round for t in self.buffer]
        for t, s in zip(self.buffer, stale, strict=True):
            t.rec.staleness = s
            t.rec.round = version
        eng.port.aggregate_async(version, keys, stale)
        eng.emit("aggregate", version, clients=[k[1] for k in keys], staleness=stale)
        if version + 1 >= eng.config.rounds:
            yield from self._stop_in_flight()
        ev = eng.port.evaluate(version)
        recs = [t.rec for t in self.buffer] + self.pending
        eng.close_round(version, ev, recs, len(self.buffer), self.t0, self.energy_before)
        self.buffer, self.pending = [], []
        self.t0, self.energy_before = eng.env.now, eng.fleet_energy_j
        self.version += 1

    def _stop_in_flight(self) -> ProcessGenerator:
        """The run ends here: work still in flight is stopped now, charged and recorded as
        stale in this last version."""
        procs = [t.proc for t in self.in_flight.values()]
        for proc in procs:
            if proc.is_alive:
                proc.interrupt("end of run")
        if procs:
            yield self.eng.env.all_of(procs)
        for cid in sorted(self.in_flight):
            task = self.in_flight[cid]
            task.rec.round = self.version
            self.pending.append(task.rec)
            self.eng.working.pop(cid, None)
        self.in_flight.clear()
