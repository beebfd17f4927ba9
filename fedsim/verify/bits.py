"""bits.csv against clients.csv: bit averages, budgets and payloads on the wire.

The bits a client used are recorded per layer; clients.csv repeats them as averages and as
payload sizes. Recomputing both from bits.csv catches a writer that drifted from the
quantizer, and the budget rules catch a method that spent more bits than it was given.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fedsim.payload import layer_payload_bits
from fedsim.records.reader import Row
from fedsim.spec import FLOAT_BITS
from fedsim.verify.events import Events
from fedsim.verify.report import Checker, close, show, where

BUDGET_EPS = 1e-9

#: Methods whose downlink bit vector must fit the client's budget (weighted average).
DOWNLINK_BUDGET = ("fedmpq", "aqfl")
#: Methods whose uplink quantizer uses floor(budget) bits per layer.
UPLINK_BUDGET = ("fedpaq", "uveqfed")


@dataclass(frozen=True)
class Budget:
    """Which budget rule the run's method answers to (fpq8, fedavg, fedprox: none)."""

    algorithm: str = "fedavg"
    #: fedmpq's reference allocation stops growing only once the budget is reached, so one
    #: layer's share may end above it
    overshoot: bool = False

    @classmethod
    def of(cls, scenario: dict[str, Any]) -> Budget:
        algo = scenario.get("algorithm")
        if not isinstance(algo, dict):
            return cls()
        algorithm = str(algo.get("name", "fedavg"))
        return cls(algorithm, algorithm == "fedmpq"
                   and algo.get("allocation", "reference") == "reference")

    def check_down(self, ck: Checker, row: Row, avg_down: float, params: list[int]) -> None:
        if self.algorithm not in DOWNLINK_BUDGET:
            return
        r, c = row["round"], row["client_id"]
        slack = max(params) / max(1, sum(params)) if self.overshoot else 0.0
        ck.check(avg_down <= row["budget_bits"] + slack + BUDGET_EPS,
                 f"{where(r, c)}: downlink average bits {show(avg_down)} (bits.csv) exceed "
                 f"budget_bits {show(row['budget_bits'])} ({self.algorithm} is budget-bound"
                 + (", by more than one layer's share" if self.overshoot else "") + ")",
                 r, c)

    def check_up(self, ck: Checker, row: Row, up: list[int]) -> None:
        if self.algorithm not in UPLINK_BUDGET:
            return
        r, c = row["round"], row["client_id"]
        budget = row["budget_bits"]
        cap = math.floor(budget + BUDGET_EPS) if math.isfinite(budget) else budget
        ck.check(max(up) <= cap,
                 f"{where(r, c)}: uplink bits {max(up)} (bits.csv) exceed floor(budget_bits)"
                 f" = {cap} ({self.algorithm} quantizes the uplink at the budget)", r, c)


class Payloads:
    """Collects (payload, layer bits) pairs: payload - layer bits is the float state.

    The float state (biases, norms) is not in bits.csv, so it cannot be recomputed per row;
    it must be one constant for the whole run, which is checked once all rows are in.
    """

    def __init__(self) -> None:
        self.items: list[tuple[int, int, str, int, int]] = []

    def add(self, r: int, c: int, direction: str, payload: int, layers: int) -> None:
        self.items.append((r, c, direction, payload, layers))

    def check(self, ck: Checker) -> None:
        if not self.items:
            return
        counts = Counter(p - lay for _, _, _, p, lay in self.items)
        const, _ = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
        ck.check(const >= 0 and const % FLOAT_BITS == 0,
                 f"model float state is {const} bits (payload - layer payloads): not a "
                 f"whole number of {FLOAT_BITS}-bit values")
        for r, c, d, payload, layers in self.items:
            ck.check(payload - layers == const,
                     f"{where(r, c)}: bits_{d}_payload {payload} in clients.csv != "
                     f"{layers + const} computed from bits.csv ({layers} layer bits + "
                     f"{const} float-state bits)", r, c)


def weighted_avg(bits: list[int], params: list[int]) -> float:
    total = sum(params)
    if total <= 0:
        return float("nan")
    try:
        return sum(b * p for b, p in zip(bits, params, strict=True)) / total
    except OverflowError:
        return float("inf")


def _layers_payload(bits: list[int], params: list[int]) -> int | None:
    try:
        return sum(layer_payload_bits(p, b) for p, b in zip(params, bits, strict=True))
    except ValueError:
        return None


def check_bits(ck: Checker, row: Row, evs: Events, budget: Budget, brows: list[Row],
               payloads: Payloads) -> None:
    """Bits: averages, budgets and payloads of one clients.csv row."""
    r, c = row["round"], row["client_id"]
    if not ck.check(bool(brows), f"{where(r, c)}: no rows in bits.csv", r, c):
        return
    brows = _one_copy(row, brows)
    names = [b["layer"] for b in brows]
    if not ck.check(len(set(names)) == len(names),
                    f"{where(r, c)}: bits.csv layers {names} repeat", r, c):
        return
    params = [b["params"] for b in brows]
    down = [b["bits_down"] for b in brows]
    up = [b["bits_up"] for b in brows]

    if ck.check(all(b is not None for b in down),
                f"{where(r, c)}: bits.csv has no bits_down for some layers", r, c):
        avg_down = _check_avg(ck, row, "down", down, params)
        budget.check_down(ck, row, avg_down, params)
        if row["bits_down_payload"] != 0 or evs.get("downlink_end"):
            _add_payload(ck, row, "down", down, params, payloads)

    if all(b is not None for b in up):
        _check_avg(ck, row, "up", up, params)
        budget.check_up(ck, row, up)
        _add_payload(ck, row, "up", up, params, payloads)
    elif ck.check(all(b is None for b in up),
                  f"{where(r, c)}: bits.csv has bits_up for some layers only", r, c):
        ck.check(row["bits_up_payload"] == 0 and not evs.get("uplink_end"),
                 f"{where(r, c)}: bits_up_payload {row['bits_up_payload']} in clients.csv "
                 "(or an uplink_end event) but no bits_up in bits.csv", r, c)


def _one_copy(row: Row, brows: list[Row]) -> list[Row]:
    """The layer table of this row: async, a client reporting twice in one aggregation has
    its table twice under the same (round, client); take the copy matching this row."""
    table = [(b["layer"], b["params"]) for b in brows]
    n = len({name for name, _ in table}) or 1
    if len(table) % n or table != table[:n] * (len(table) // n):
        return brows
    copies = [brows[i:i + n] for i in range(0, len(brows), n)]
    for copy in copies:
        params = [b["params"] for b in copy]
        down = [b["bits_down"] for b in copy]
        if None not in down and close(weighted_avg(down, params), row["avg_bits"]):
            up = [b["bits_up"] for b in copy]
            if None in up or close(weighted_avg(up, params), row["avg_bits_up"]):
                return copy
    return copies[0]


def _check_avg(ck: Checker, row: Row, d: str, bits: list[int], params: list[int]) -> float:
    """clients.csv's average bits of direction ``d`` against bits.csv; the average."""
    r, c = row["round"], row["client_id"]
    col = "avg_bits" if d == "down" else "avg_bits_up"
    avg = weighted_avg(bits, params)
    ck.check(close(row[col], avg),
             f"{where(r, c)}: {col} {show(row[col])} in clients.csv != "
             f"{show(avg)} = parameter-weighted average of bits_{d} in bits.csv", r, c)
    return avg


def _add_payload(ck: Checker, row: Row, d: str, bits: list[int], params: list[int],
                 payloads: Payloads) -> None:
    """Queue the row's ``d`` payload for the float-state check, if its bits can be sent."""
    r, c = row["round"], row["client_id"]
    layers = _layers_payload(bits, params)
    if ck.check(layers is not None,
                f"{where(r, c)}: bits_{d} {bits} has a bit-width the payload format does "
                "not allow (1..16 or 32)", r, c):
        assert layers is not None
        payloads.add(r, c, d, row[f"bits_{d}_payload"], layers)
