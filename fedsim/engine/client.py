"""One client's task as a SimPy process: downlink, local compute, uplink, or how it stopped.

Why a module of its own: the synchronous round and the asynchronous FedBuff server run the
very same client work and differ only in what they do with its report (a round's arrival
list, the server's queue). So planning, admission, the phases, failures and aborts live here
once, and everything a task spends goes through :meth:`ClientTask.spend`, whether a phase
completes, is cut short, or the client idles until its round closes.

Durations come only from the cost oracle: the compute time is known *before* training, so a
client that cannot finish before the deadline (or cannot pay for it) never trains on the
host; it works, and spends energy, until something interrupts it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy
from simpy.events import ProcessGenerator

from fedsim.engine.records import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    STALE,
    STRAGGLER,
    ClientRoundRecord,
)
from fedsim.engine.types import PhaseCost, WorkItem, WorkResult
from fedsim.seeding import derive_seed, keyed_uniforms

if TYPE_CHECKING:
    from fedsim.engine.core import Engine

# Why a task stopped (the interrupt's cause) -> the status its record gets.
CAUSE_STATUS = {
    "deadline": STRAGGLER,
    "over-commit": STRAGGLER,
    "failure": DROPOUT,
    "offline": OFFLINE,
    "battery": BATTERY,
    "end of run": STALE,
}


def failure_draws(seed: int, r: int, attempt: int,
                  cids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per client: the uniform that decides a failure (fails if below its probability) and
    the fraction of the planned work at which it strikes. Keyed by (seed, round, attempt,
    client), so the per-client and the vectorised engine draw the same numbers."""
    names = ("failure", r, attempt)
    return keyed_uniforms(seed, names, cids, 0), keyed_uniforms(seed, names, cids, 1)


class BatteryEmpty(Exception):
    """Raised inside a phase at the moment the battery reaches its floor."""


@dataclass(frozen=True)
class Plan:
    """Costs known before any host work: downlink, compute, and uplink at the downlink bits.

    The uplink estimate is an upper bound (uploads never grow bits); admission and failure
    timing use the whole plan, the real uplink is costed once training returned its bits.
    """

    steps: int
    down: PhaseCost
    comp: PhaseCost
    up_est: PhaseCost

    @property
    def time_s(self) -> float:
        return self.down.time_s + self.comp.time_s + self.up_est.time_s

    @property
    def energy_j(self) -> float:
        return self.down.energy_j + self.comp.energy_j + self.up_est.energy_j


class ClientTask:
    """One client's work on one round (sync) or model version (async), and its record."""

    def __init__(self, eng: Engine, r: int, cid: int, bits: tuple[int, ...]) -> None:
        self.eng = eng
        self.round = r  # the round, or the model version the client downloaded
        self.cid = cid
        self.bits = bits
        desc = eng.clients[cid]
        self.rec = ClientRoundRecord(
            round=r, client_id=cid, device=desc.device, device_class=desc.device_class,
            group=desc.group, budget_bits=desc.budget_bits, avg_bits=eng.cost.avg_bits(bits),
            samples=desc.samples, bits_down=tuple(bits),
        )
        steps = eng.steps_for(desc.samples) * eng.config.epochs
        self.plan = Plan(steps, eng.cost.transfer(cid, bits, "down"),
                         eng.cost.compute(cid, bits, steps), eng.cost.transfer(cid, bits, "up"))
        self.attempt = 0  # async: the client's n-th task started from this model version
        self.item: WorkItem | None = None
        self.handle: Future[WorkResult] | None = None
        self.consumed = False
        self.phase: str | None = None
        self.phase_start = 0.0
        self.phase_duration = 0.0
        self.phase_energy = 0.0
        self._proc: simpy.Process | None = None

    @property
    def proc(self) -> simpy.Process:
        assert self._proc is not None, "the task was not started"
        return self._proc

    @property
    def key(self) -> tuple[int, int, int]:
        assert self.item is not None, "the task never trained"
        return self.item.key

    def admit(self) -> bool:
        """Memory and battery checks before scheduling; records why a client is left out."""
        eng, rec = self.eng, self.rec
        problem = eng.cost.memory_problem(self.cid, self.bits)
        if problem:
            rec.status, rec.reason = INFEASIBLE, problem
            eng.emit("infeasible", self.round, self.cid, reason=problem)
            return False
        spendable = eng.batteries.spendable_j(self.cid)
        if self.plan.energy_j > spendable:
            rec.status = BATTERY
            rec.reason = (f"battery cannot pay the round: needs {self.plan.energy_j:.3g} J, "
                          f"{spendable:.3g} J above the floor")
            eng.emit("battery_low", self.round, self.cid, reason=rec.reason)
            return False
        return True

    def start(self, deadline_at: float | None, on_arrival: Callable[[int], object],
              attempt: int = 0) -> simpy.Process:
        """Run the task as a process; ``on_arrival(cid)`` is called once its upload is in."""
        self.attempt = attempt
        self._proc = self.eng.env.process(self._run(deadline_at, on_arrival))
        self.eng.working[self.cid] = self._proc
        return self._proc

    def spend(self, phase: str, seconds: float, energy_j: float) -> None:
        """Charge a phase's energy to the record and the battery, and book its time."""
        self.rec.charge(phase, energy_j)
        self.eng.batteries.drain(self.cid, energy_j)
        if phase == "compute":
            self.rec.compute_s += seconds
        elif phase == "idle":
            self.rec.idle_s += seconds
        else:
            self.rec.comm_s += seconds

    # -- the process ------------------------------------------------------------------------
    def _run(self, deadline_at: float | None,
             on_arrival: Callable[[int], object]) -> ProcessGenerator:
        self._schedule_failure()
        try:
            self.rec.bits_down_payload = self.plan.down.payload_bits
            yield from self._transfer("downlink", self.plan.down)
            yield from self._compute(deadline_at)
            yield from self._uplink()
            self.rec.status = OK
            self.rec.finished_s = self.eng.env.now
            on_arrival(self.cid)
        except (simpy.Interrupt, BatteryEmpty) as exc:
            cause = "battery" if isinstance(exc, BatteryEmpty) else str(exc.cause)
            self._abort(cause)

    def _schedule_failure(self) -> None:
        """With the client's failure probability, strike at a random point of the plan."""
        eng, env = self.eng, self.eng.env
        p = eng.dynamics[self.cid].failure_prob
        if p > 0:
            u_fail, u_when = failure_draws(eng.config.seed, self.round, self.attempt,
                                           [self.cid])
            if u_fail[0] < p:
                at = env.now + float(u_when[0]) * self.plan.time_s
                assert env.active_process is not None
                env.process(self._fail_at(env.active_process, at))

    def _fail_at(self, proc: simpy.Process, at: float) -> ProcessGenerator:
        yield self.eng.env.timeout(max(0.0, at - self.eng.env.now))
        if proc.is_alive:
            proc.interrupt("failure")

    def _phase(self, name: str, cost: PhaseCost) -> ProcessGenerator:
        """Spend the phase's time and energy, or empty the battery trying."""
        env = self.eng.env
        duration, energy = cost.time_s, cost.energy_j
        self.phase, self.phase_start = name, env.now
        self.phase_duration, self.phase_energy = duration, energy
        spendable = self.eng.batteries.spendable_j(self.cid)
        if energy > spendable and energy > 0:
            cut = duration * max(0.0, spendable) / energy
            yield env.timeout(cut)
            raise BatteryEmpty()
        yield env.timeout(duration)
        self.spend(name, duration, energy)
        self.phase = None

    def _transfer(self, name: str, cost: PhaseCost) -> ProcessGenerator:
        yield from self._phase(name, cost)
        self.eng.emit(f"{name}_end", self.round, self.cid, duration_s=cost.time_s,
                      payload_bits=cost.payload_bits, energy_j=cost.energy_j)

    def _compute(self, deadline_at: float | None) -> ProcessGenerator:
        """Train on the host only if the work can finish in time and be paid for."""
        eng, comp = self.eng, self.plan.comp
        fits = deadline_at is None or eng.env.now + comp.time_s <= deadline_at
        fits = fits and comp.energy_j <= eng.batteries.spendable_j(self.cid)
        if fits:
            self._submit()
        yield from self._phase("compute", comp)
        eng.emit("compute_end", self.round, self.cid, duration_s=comp.time_s,
                 energy_j=comp.energy_j, steps=self.plan.steps)

    def _submit(self) -> None:
        eng, r, cid, attempt = self.eng, self.round, self.cid, self.attempt
        seed = (derive_seed(eng.config.seed, "train", r, cid, attempt) if attempt
                else derive_seed(eng.config.seed, "train", r, cid))
        self.item = WorkItem(round=r, client_id=cid, bits=self.bits,
                             samples=eng.clients[cid].samples, epochs=eng.config.epochs,
                             steps=self.plan.steps, seed=seed, attempt=attempt)
        self.handle = eng.port.submit(self.item)

    def _uplink(self) -> ProcessGenerator:
        """Take the training result (the bits actually uploaded) and send it."""
        eng, rec = self.eng, self.rec
        assert self.handle is not None  # a client that could not finish was interrupted
        result = self.handle.result()
        self.consumed = True
        eng.selection_state.last_loss[self.cid] = result.train_loss
        eng.selection_state.expected_s[self.cid] = self.plan.time_s
        rec.bits_up = tuple(result.bits_up)
        rec.avg_bits_up = eng.cost.avg_bits(result.bits_up)
        up = eng.cost.transfer(self.cid, result.bits_up, "up")
        rec.bits_up_payload = up.payload_bits
        yield from self._transfer("uplink", up)

    def _abort(self, cause: str) -> None:
        """Charge the part of the current phase already done; record why the work stopped."""
        eng, rec = self.eng, self.rec
        done = eng.env.now - self.phase_start
        if self.phase is not None:
            if cause == "battery":
                e = max(0.0, eng.batteries.spendable_j(self.cid))
            else:
                frac = (min(1.0, done / self.phase_duration) if self.phase_duration > 0
                        else 1.0)
                e = self.phase_energy * frac
            self.spend(self.phase, done, e)
        rec.status = CAUSE_STATUS.get(cause, STRAGGLER)
        rec.reason = cause
        rec.finished_s = eng.env.now
        if self.item is not None:  # never aggregated: the port may drop its update
            eng.port.discard(self.item.key)
        eng.emit(rec.status, self.round, self.cid, phase=self.phase, cause=cause,
                 energy_j=rec.energy_j)
