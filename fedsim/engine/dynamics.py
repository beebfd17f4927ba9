"""Fleet dynamics beside the protocol: batteries, their recharge, and availability.

Why a module of its own: the fleet builder (``fedsim.runner.fleet``) fills in
:class:`ClientDynamics` and :class:`Recharge` from a scenario without needing the engine,
and both the synchronous and the asynchronous server spend energy through the same
:class:`Batteries` (a client on mains power never runs out). The two side processes here,
one per battery that recharges and one per client that walks its online windows, only flip
state that the servers read; they never decide anything themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import simpy
from simpy.events import ProcessGenerator

from fedsim.engine.availability import AvailabilityModel


@dataclass(frozen=True)
class Recharge:
    """Charge at ``power_w`` for ``duration_s`` every ``period_s``, starting at ``start_s``."""

    period_s: float
    start_s: float
    duration_s: float
    power_w: float


@dataclass(slots=True)
class ClientDynamics:
    """Per-client fleet dynamics: failures and battery."""

    failure_prob: float = 0.0
    battery_capacity_j: float | None = None
    battery_level_j: float = 0.0
    battery_floor_j: float = 0.0
    recharge: Recharge | None = None


class Batteries:
    """The fleet's battery levels, spent by client work and refilled by recharge windows.

    It holds the caller's :class:`ClientDynamics` objects and changes their
    ``battery_level_j`` in place, so whoever built the fleet sees the levels the run left.
    A client without ``battery_capacity_j`` is on mains power: it can always pay.
    """

    def __init__(self, dynamics: Mapping[int, ClientDynamics]) -> None:
        self.dynamics = dynamics

    def has(self, cid: int) -> bool:
        return self.dynamics[cid].battery_capacity_j is not None

    def spendable_j(self, cid: int) -> float:
        """Energy the client can still spend above its floor (``inf`` on mains power)."""
        d = self.dynamics[cid]
        if d.battery_capacity_j is None:
            return math.inf
        return d.battery_level_j - d.battery_floor_j

    def drain(self, cid: int, energy_j: float) -> None:
        d = self.dynamics[cid]
        if d.battery_capacity_j is not None:
            d.battery_level_j = max(0.0, d.battery_level_j - energy_j)

    def view(self) -> dict[int, float]:
        """Spendable energy of every battery client (what selection policies look at)."""
        return {cid: d.battery_level_j - d.battery_floor_j for cid, d in self.dynamics.items()
                if d.battery_capacity_j is not None}

    def snapshot(self) -> dict[str, float]:
        return {str(c): float(d.battery_level_j) for c, d in self.dynamics.items()
                if d.battery_capacity_j is not None}

    def restore(self, levels: Mapping[str, float]) -> None:
        for c, level in levels.items():
            self.dynamics[int(c)].battery_level_j = float(level)

    def start_recharging(self, env: simpy.Environment) -> None:
        """One process per battery client that has a recharge schedule."""
        for cid, d in self.dynamics.items():
            if d.recharge is not None and d.battery_capacity_j is not None:
                env.process(self._recharge(env, cid, d.recharge))

    def _recharge(self, env: simpy.Environment, cid: int, rc: Recharge) -> ProcessGenerator:
        """Add a window's whole charge at its end (capped at capacity), window after window."""
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


def follow_availability(env: simpy.Environment, model: AvailabilityModel, cid: int,
                        online: dict[int, bool],
                        working: Mapping[int, simpy.Process]) -> ProcessGenerator:
    """Walk a client's online windows: flip ``online[cid]`` and interrupt its work on leaving.

    The interrupt carries the cause ``"offline"``, which the client's task records as its
    status; a window that ends at ``inf`` keeps the client online for good.
    """
    for start, end in model.windows(cid):
        if start > env.now:
            yield env.timeout(start - env.now)
        if end <= env.now:
            continue
        online[cid] = True
        if math.isinf(end):
            return
        yield env.timeout(end - env.now)
        online[cid] = False
        proc = working.get(cid)
        if proc is not None and proc.is_alive:
            proc.interrupt("offline")
    online[cid] = False
