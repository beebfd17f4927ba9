"""Bit-widths: per-layer bits of one round, and average bits per class and round."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedsim.reporting.run import OK, Run, Table


def layer_order(bits: Table) -> list[str]:
    seen: dict[str, None] = {}
    for name in bits["layer"]:
        seen.setdefault(str(name), None)
    return list(seen)


def has_quantized_bits(run: Run) -> bool:
    """True when any client's model ran below 32 bits on average (a quantized / mixed run).

    ``avg_bits`` of clients.csv is the parameter-weighted mean of bits.csv's per-layer bits,
    so this never needs to read bits.csv (large for long runs).
    """
    c = run.clients
    vals = np.concatenate([c["avg_bits"], c["avg_bits_up"][c["status"] == OK]])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return bool(len(vals)) and bool((vals < 32).any())


def last_round(run: Run) -> int | None:
    if len(run.rounds):
        return int(run.rounds["round"][-1])
    if len(run.clients):
        return int(np.nanmax(run.clients["round"]))
    return None


@dataclass
class BitMatrix:
    round: int
    clients: list[int]
    classes: list[str]
    layers: list[str]
    params: list[int]
    down: np.ndarray  # clients x layers, NaN where unknown
    up: np.ndarray


def bit_matrix(run: Run, round_: int | None = None) -> BitMatrix | None:
    """Clients x layers bits of one round (default: the last), rows in fleet order."""
    if round_ is None:
        round_ = last_round(run)
    if round_ is None:
        return None
    sel = run.bits({round_})
    sel = sel.where(sel["round"] == round_)
    if not len(sel):
        return None
    layers = layer_order(sel)
    params = {}
    for name, p in zip(sel["layer"], sel["params"], strict=True):
        params.setdefault(str(name), int(p) if math.isfinite(p) else 0)
    classes = run.client_classes()
    order = {k: i for i, k in enumerate(run.device_classes)}
    cids = sorted({int(x) for x in sel["client_id"]},
                  key=lambda cid: (order.get(classes.get(cid, ""), 99), cid))
    row = {cid: i for i, cid in enumerate(cids)}
    col = {name: j for j, name in enumerate(layers)}
    down = np.full((len(cids), len(layers)), np.nan)
    up = np.full((len(cids), len(layers)), np.nan)
    for cid, name, bd, bu in zip(sel["client_id"], sel["layer"], sel["bits_down"],
                                 sel["bits_up"], strict=True):
        i, j = row[int(cid)], col[str(name)]
        down[i, j], up[i, j] = bd, bu
    return BitMatrix(round=round_, clients=cids, classes=[classes.get(c, "") for c in cids],
                     layers=layers, params=[params[n] for n in layers], down=down, up=up)


@dataclass
class BitTrajectory:
    device_class: str
    rounds: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    budget: float | None


def _per_round(rounds: np.ndarray, values: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rounds present and the mean, min and max of the finite values in each."""
    ok = np.isfinite(values)
    rounds, values = rounds[ok], values[ok]
    if not len(rounds):
        e = np.array([])
        return e, e, e, e
    order = np.argsort(rounds, kind="stable")
    rounds, values = rounds[order], values[order]
    uniq, starts = np.unique(rounds, return_index=True)
    counts = np.diff(np.append(starts, len(rounds)))
    mean = np.add.reduceat(values, starts) / counts
    return uniq, mean, np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)


def _reporting_clients(run: Run, column: str) -> Table:
    """The client-rounds that carry ``column``: uplink bits exist only for aggregated ones."""
    c = run.clients
    if column == "avg_bits_up":
        c = c.where(c["status"] == OK)
    return c


def bit_trajectories(run: Run, column: str = "avg_bits") -> list[BitTrajectory]:
    """Per device class and round: mean, min and max of a client's average bits.

    ``avg_bits`` is what the server sent (the training precision); ``avg_bits_up`` what the
    clients reported back (only aggregated clients count for it).
    """
    c = _reporting_clients(run, column)
    out = []
    for cls in run.device_classes:
        sub = c.where(c["device_class"] == cls)
        if not len(sub):
            continue
        rounds, mean, lo, hi = _per_round(sub["round"], sub[column])
        budgets = np.unique(sub["budget_bits"][np.isfinite(sub["budget_bits"])])
        budget = float(budgets[0]) if len(budgets) == 1 else None
        out.append(BitTrajectory(cls, rounds, mean, lo, hi, budget))
    return out


def mean_bits_per_round(run: Run, column: str = "avg_bits") -> tuple[np.ndarray, np.ndarray]:
    """Fleet-wide mean of clients' average bits per round (aggregated clients for uplink)."""
    c = _reporting_clients(run, column)
    rounds, mean, _, _ = _per_round(c["round"], c[column])
    return rounds, mean
