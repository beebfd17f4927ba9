"""Bit budgets from the cost model: which precision each device can afford, and why.

For every budget a method can give (``Algorithm.budget_choices``: 1-8 bits for the
budgeted methods, 8 for FPQ8, 32 for float methods) a client's round is priced with the
same cost oracle the engine charges -- downlink, local training and uplink at the bits the
method assigns that budget before any report (``Algorithm.bits_at``) -- and checked against
four constraints, in this order:

* ``memory``: the training footprint (planes, optimizer state, activations at the batch
  size) within the device's usable memory;
* ``deadline``: downlink + compute + uplink time within ``selection.deadline_s``;
* ``energy``: the round's energy within the group's allowance ``energy_j`` per round;
* ``battery``: the round's energy within the battery's spendable energy (above its floor).

``budget_bits: auto`` picks the largest budget that satisfies all four; a client that fits
none is excluded from the run up front, with the constraint that binds at the cheapest
budget as its reason. Costs grow with the bits (memory, time and energy are monotone in
every layer's bit-width), so a device with less memory or a tighter deadline never gets a
higher budget. Per client, because links differ (each client's bandwidth draw) and so do
batteries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fedsim.config.schema import Scenario
from fedsim.errors import InputError
from fedsim.hardware import train_memory_bytes, usable_memory_bytes
from fedsim.runner.cost import HardwareCost
from fedsim.runner.fleet import FleetClient

CONSTRAINTS = ("memory", "deadline", "energy", "battery")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client's round must fit in (None: no such limit)."""

    deadline_s: float | None = None
    energy_j: float | None = None
    battery_j: float | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One budget priced for one client: its round's cost and the constraint it breaks."""

    budget: float
    avg_bits: float
    memory_bytes: int
    usable_bytes: int
    compute_s: float
    comm_s: float
    energy_j: float
    binding: str  # "" when every constraint holds, else the first one broken
    detail: str

    @property
    def time_s(self) -> float:
        return self.compute_s + self.comm_s

    @property
    def fits(self) -> bool:
        return not self.binding


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """Every option of one client and the budget it gets (None: it cannot join)."""

    client: FleetClient
    options: tuple[Option, ...]
    budget: float | None
    auto: bool
    limits: Limits

    @property
    def excluded(self) -> bool:
        return self.budget is None

    @property
    def reason(self) -> str:
        """Why the client got its budget: the constraint that stops the next budget up (or,
        for a fixed budget, whether it fits)."""
        if self.budget is None:
            cheapest = self.options[-1]
            return f"fits no precision: at {_bits_text(cheapest.budget)} {cheapest.detail}"
        if not self.auto:
            own = next((o for o in self.options if o.budget == self.budget), None)
            if own is None:
                return "fixed by the scenario"
            return ("fixed by the scenario; it fits" if own.fits else
                    f"fixed by the scenario; it breaks {own.binding}: {own.detail}")
        above = [o for o in self.options if o.budget > self.budget and not o.fits]
        if not above:
            return "the method's highest precision fits"
        o = above[-1]
        return f"{_bits_text(o.budget)} breaks {o.binding}: {o.detail}"


def _bits_text(b: float) -> str:
    return "float" if b >= 32 else f"{b:g} bit{'' if b == 1 else 's'}"


class Planner:
    """Prices budgets for clients with the run's own cost oracle and the method's rules."""

    def __init__(self, cost: HardwareCost, algorithm: Any, steps_for: Callable[[int], int],
                 epochs: int) -> None:
        self.cost = cost
        self.algorithm = algorithm
        self.steps_for = steps_for
        self.epochs = epochs
        self.choices = tuple(sorted(algorithm.budget_choices, reverse=True))
        self._memory: dict[tuple[tuple[int, ...], int], int] = {}

    def option(self, client: FleetClient, budget: float, limits: Limits) -> Option:
        """Price ``budget`` for ``client`` exactly as the engine will charge its round."""
        cid, cost = client.client_id, self.cost
        bits = self.algorithm.bits_at(budget)
        # the uplink priced at the downlink bits, as the engine's admission estimates it
        # (a quantized uplink -- fedpaq, uveqfed -- then costs less than planned, never more)
        up_bits = bits
        steps = self.steps_for(cost.samples_of(cid)) * self.epochs
        comp = cost.compute(cid, bits, steps)
        down, up = cost.transfer(cid, bits, "down"), cost.transfer(cid, up_bits, "up")
        batch = cost.batch_size_of(cid)
        if (bits, batch) not in self._memory:  # a fleet has few distinct (bits, batch)
            self._memory[(bits, batch)] = train_memory_bytes(cost.spec, bits, batch_size=batch,
                                                             act_bits=cost.act_bits)
        need = self._memory[(bits, batch)]
        usable = usable_memory_bytes(client.profile)
        comm_s = down.time_s + up.time_s
        energy = down.energy_j + comp.energy_j + up.energy_j
        binding, detail = _binding(need, usable, comp.time_s + comm_s, energy, limits)
        return Option(budget, cost.avg_bits(bits), need, usable, comp.time_s, comm_s, energy,
                      binding, detail)

    def plan(self, client: FleetClient, limits: Limits, *, priced: bool = True) -> ClientPlan:
        """All options of one client; its budget: the fixed one, or the largest that fits.

        ``priced=False`` skips pricing a fixed budget (it needs no choosing): a fleet of
        10^5 fixed-budget clients is planned in no time; ``fedsim plan`` prices them.
        """
        if client.auto is None and not priced:
            return ClientPlan(client, (), client.budget_bits, False, limits)
        budgets = list(self.choices)
        if client.auto is None and client.budget_bits not in budgets:
            budgets = sorted([*budgets, client.budget_bits], reverse=True)
        options = tuple(self.option(client, b, limits) for b in budgets)
        if client.auto is None:
            return ClientPlan(client, options, client.budget_bits, False, limits)
        fitting = [o.budget for o in options if o.fits]
        return ClientPlan(client, options, max(fitting) if fitting else None, True, limits)


def _binding(need: int, usable: int, time_s: float, energy_j: float,
             limits: Limits) -> tuple[str, str]:
    """The first constraint broken, and by how much (empty when the round fits)."""
    from fedsim.hardware.memory import format_bytes

    if need > usable:
        return "memory", f"needs {format_bytes(need)}, usable {format_bytes(usable)}"
    if limits.deadline_s is not None and time_s > limits.deadline_s:
        return "deadline", f"a round takes {time_s:.4g} s, deadline {limits.deadline_s:g} s"
    if limits.energy_j is not None and energy_j > limits.energy_j:
        return "energy", f"a round costs {energy_j:.4g} J, allowance {limits.energy_j:g} J"
    if limits.battery_j is not None and energy_j > limits.battery_j:
        return "battery", (f"a round costs {energy_j:.4g} J, battery has {limits.battery_j:.4g}"
                           " J above its floor")
    return "", ""


def limits_for(sc: Scenario, client: FleetClient, dynamics: Mapping[int, Any]) -> Limits:
    """The limits of one client: the round deadline, its allowance, its battery now."""
    d = dynamics.get(client.client_id)
    battery = None
    adapts = client.auto is not None and client.auto.adapt == "battery"
    if d is not None and d.battery_capacity_j is not None and not adapts:
        # an adapting client's battery is judged at each dispatch (it may have recharged)
        battery = d.battery_level_j - d.battery_floor_j
    allowance = client.auto.energy_j if client.auto is not None else None
    deadline = sc.selection.deadline_s if sc.mode == "sync" else None  # async has none
    return Limits(deadline, allowance, battery)


def resolve_budgets(planner: Planner, sc: Scenario, fleet: Sequence[FleetClient],
                    dynamics: Mapping[int, Any], *, file: str) -> list[ClientPlan]:
    """Plan every client (pricing every budget of automatic ones and of each group's first
    client, which plan.csv shows); refuse (exit 2) a scenario in which no client can join."""
    firsts = {c.client_id for c in {c.group: c for c in reversed(fleet)}.values()}
    plans = [planner.plan(c, limits_for(sc, c, dynamics), priced=c.client_id in firsts)
             for c in fleet]
    if plans and all(p.excluded for p in plans):
        per_class: dict[str, str] = {}
        for p in plans:
            per_class.setdefault(p.client.profile.device_class, p.reason)
        lines = "; ".join(f"{k}: {v}" for k, v in per_class.items())
        raise InputError(f"no device can join at any precision ({lines})", file=file,
                         key="budget_bits")
    return plans


def with_budgets(fleet: Sequence[FleetClient], plans: Sequence[ClientPlan]) -> list[FleetClient]:
    """The fleet with every automatic budget filled in (excluded clients at the lowest
    budget: they are never scheduled, the value only keeps the method's tables numeric)."""
    out = []
    for c, p in zip(fleet, plans, strict=True):
        if c.auto is not None:
            b = p.budget if p.budget is not None else min(o.budget for o in p.options)
            c = replace(c, budget_bits=float(b))
        out.append(c)
    return out
