"""The discrete-event engine: a server process drives rounds, one process per client.

The story of a synchronous round (FedAvg / FedMPQ):

1. The server selects clients (seeded stream per round) and asks the algorithm, through the
   trainer port, for each client's downlink bit vector.
2. A client whose training configuration does not fit its usable memory is not scheduled
   (recorded ``infeasible`` with the reason).
3. Each scheduled client: downlink transfer, local compute, uplink transfer. The compute
   time is known from the cost model *before* training, so a client that cannot finish
   before the deadline never trains on the host; it works (and spends energy) until the
   deadline interrupts it.
4. The round closes when every client reported or the deadline fired; late clients are
   interrupted, charged the energy they spent so far, and recorded as stragglers.
5. The server aggregates the reports (ids only cross the port), evaluates, records.

No torch and no host clock here: simulated durations come only from the cost oracle.
Results are consumed in simulated-time order, so the executor behind the port never
changes the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import simpy

from fedsim.engine.records import (
    INFEASIBLE,
    OK,
    STRAGGLER,
    ClientRoundRecord,
    Observer,
    RoundRecord,
)
from fedsim.engine.types import ClientDesc, CostOracle, TrainerPort, WorkItem, WorkResult
from fedsim.seeding import derive_seed, rng


@dataclass(frozen=True)
class EngineConfig:
    seed: int
    rounds: int
    per_round: int
    epochs: int
    deadline_s: float | None = None


class _Phase:
    """The phase a client is in, so an interrupt can charge the part already done."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.start = 0.0
        self.duration = 0.0
        self.energy_j = 0.0


class Engine:
    """Runs rounds of a synchronous FL protocol in simulated time."""

    def __init__(
        self,
        config: EngineConfig,
        clients: Sequence[ClientDesc],
        port: TrainerPort,
        cost: CostOracle,
        observer: Observer,
        steps_for: Callable[[int], int],
        *,
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
        self.start_round = start_round
        self.env = simpy.Environment(initial_time=start_time_s)
        self.fleet_energy_j = start_energy_j

    # -- helpers -----------------------------------------------------------------------
    def _emit(self, kind: str, round: int, client: int | None = None, **fields: Any) -> None:
        event: dict[str, Any] = {"t": round_time(self.env.now), "round": round, "kind": kind}
        if client is not None:
            event["client"] = client
        event.update(fields)
        self.observer.on_event(event)

    def select(self, round: int) -> list[int]:
        """Seeded choice of this round's clients (its own stream: nothing else shifts it)."""
        k = min(self.config.per_round, len(self.client_ids))
        if k == len(self.client_ids):
            return list(self.client_ids)
        picked = rng(self.config.seed, "select", round).choice(
            len(self.client_ids), size=k, replace=False
        )
        return sorted(self.client_ids[i] for i in picked)

    # -- processes -----------------------------------------------------------------------
    def run(self) -> None:
        self.env.process(self._server())
        self.env.run()

    def _server(self):  # type: ignore[no-untyped-def]
        for r in range(self.start_round, self.config.rounds):
            yield from self._round(r)

    def _round(self, r: int):  # type: ignore[no-untyped-def]
        env = self.env
        t0 = env.now
        energy_before = self.fleet_energy_j
        selected = self.select(r)
        self._emit("round_start", r, selected=selected)
        bits = self.port.downlink_bits(r, selected)
        deadline_at = t0 + self.config.deadline_s if self.config.deadline_s else None

        records: dict[int, ClientRoundRecord] = {}
        procs: dict[int, simpy.Process] = {}
        arrivals: list[int] = []
        for cid in selected:
            desc = self.clients[cid]
            b = bits[cid]
            rec = ClientRoundRecord(
                round=r,
                client_id=cid,
                device=desc.device,
                device_class=desc.device_class,
                group=desc.group,
                budget_bits=desc.budget_bits,
                avg_bits=self.cost.avg_bits(b),
                samples=desc.samples,
                bits_down=tuple(b),
            )
            records[cid] = rec
            problem = self.cost.memory_problem(cid, b)
            if problem:
                rec.status = INFEASIBLE
                rec.reason = problem
                self._emit("infeasible", r, cid, reason=problem)
                continue
            procs[cid] = env.process(self._client(r, desc, tuple(b), rec, deadline_at, arrivals))

        if procs:
            everyone = env.all_of(list(procs.values()))
            if deadline_at is not None:
                yield everyone | env.timeout(max(0.0, deadline_at - env.now))
            else:
                yield everyone
            late = [cid for cid, p in procs.items() if p.is_alive]
            for cid in late:
                procs[cid].interrupt("deadline")
            if late:
                yield env.all_of([procs[cid] for cid in late])
        t_end = env.now

        # Clients that reported wait idle for the round to close.
        for cid in arrivals:
            rec = records[cid]
            idle_s = max(0.0, t_end - (rec.finished_s or t_end))
            rec.idle_s = idle_s
            rec.charge("idle", idle_s * self.cost.idle_power_w(cid))

        round_energy = sum(rec.energy_j for rec in records.values())
        self.fleet_energy_j += round_energy
        reported = sorted(arrivals)
        if reported:
            self.port.aggregate(r, reported)
        self._emit("aggregate", r, clients=reported)
        ev = self.port.evaluate(r)
        for cid in selected:
            self.observer.on_client(records[cid])
        n_strag = sum(1 for rec in records.values() if rec.status == STRAGGLER)
        n_inf = sum(1 for rec in records.values() if rec.status == INFEASIBLE)
        self._emit(
            "round_end", r, accuracy=ev.accuracy, loss=ev.loss,
            energy_j=round_energy, participants=len(reported),
        )
        self.observer.on_round(
            RoundRecord(
                round=r,
                sim_time_s=t_end,
                energy_j=self.fleet_energy_j,
                accuracy=ev.accuracy,
                loss=ev.loss,
                participants=len(reported),
                stragglers=n_strag,
                selected=len(selected),
                infeasible=n_inf,
                round_s=t_end - t0,
                round_energy_j=self.fleet_energy_j - energy_before,
                metrics=dict(ev.metrics),
            )
        )

    def _client(  # type: ignore[no-untyped-def]
        self,
        r: int,
        desc: ClientDesc,
        bits: tuple[int, ...],
        rec: ClientRoundRecord,
        deadline_at: float | None,
        arrivals: list[int],
    ):
        env = self.env
        cid = desc.client_id
        phase = _Phase()
        future: Future[WorkResult] | None = None
        consumed = False

        def begin(name: str, duration: float, energy_j: float) -> simpy.Timeout:
            phase.name, phase.start = name, env.now
            phase.duration, phase.energy_j = duration, energy_j
            return env.timeout(duration)

        try:
            down = self.cost.transfer(cid, bits, "down")
            rec.bits_down_payload = down.payload_bits
            yield begin("downlink", down.time_s, down.energy_j)
            rec.comm_s += down.time_s
            rec.charge("downlink", down.energy_j)
            phase.name = None
            self._emit("downlink_end", r, cid, duration_s=down.time_s,
                       payload_bits=down.payload_bits, energy_j=down.energy_j)

            steps = self.steps_for(desc.samples) * self.config.epochs
            comp = self.cost.compute(cid, bits, steps)
            fits = deadline_at is None or env.now + comp.time_s <= deadline_at
            if fits:
                future = self.port.submit(
                    WorkItem(
                        round=r,
                        client_id=cid,
                        bits=bits,
                        samples=desc.samples,
                        epochs=self.config.epochs,
                        steps=steps,
                        seed=derive_seed(self.config.seed, "train", r, cid),
                    )
                )
            yield begin("compute", comp.time_s, comp.energy_j)
            rec.compute_s += comp.time_s
            rec.charge("compute", comp.energy_j)
            phase.name = None
            self._emit("compute_end", r, cid, duration_s=comp.time_s, energy_j=comp.energy_j,
                       steps=steps)

            assert future is not None  # a client that could not finish was interrupted
            result = future.result()
            consumed = True
            rec.bits_up = tuple(result.bits_up)
            rec.avg_bits_up = self.cost.avg_bits(result.bits_up)
            up = self.cost.transfer(cid, result.bits_up, "up")
            rec.bits_up_payload = up.payload_bits
            yield begin("uplink", up.time_s, up.energy_j)
            rec.comm_s += up.time_s
            rec.charge("uplink", up.energy_j)
            phase.name = None
            self._emit("uplink_end", r, cid, duration_s=up.time_s,
                       payload_bits=up.payload_bits, energy_j=up.energy_j)
            rec.status = OK
            rec.finished_s = env.now
            arrivals.append(cid)
        except simpy.Interrupt as intr:
            done = env.now - phase.start
            if phase.name is not None and phase.duration > 0:
                frac = min(1.0, done / phase.duration)
                rec.charge(phase.name, phase.energy_j * frac)
                if phase.name == "compute":
                    rec.compute_s += done
                else:
                    rec.comm_s += done
            rec.status = STRAGGLER
            rec.reason = str(intr.cause)
            rec.finished_s = env.now
            if future is not None and not consumed:
                self.port.discard(r, cid)
            self._emit("straggler", r, cid, phase=phase.name, cause=str(intr.cause),
                       energy_j=rec.energy_j)


def round_time(t: float) -> float:
    """Event timestamps rounded to the nanosecond so text files stay stable and short."""
    return round(float(t), 9)
