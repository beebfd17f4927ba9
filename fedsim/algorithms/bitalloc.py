"""FedMPQ's server-side bit allocation: bit statistics, layer priority, pruning-growing.

Pure numpy (docs/algorithm.md sections 6-7), kept apart from the strategy file like Flower keeps its
aggregation math apart, so the rules can be tested on hand examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIN_BITS = 1
MAX_BITS = 8
_EPS = 1e-9


def client_weights(samples: Sequence[int], budgets: Sequence[float]) -> np.ndarray:
    """``omega_n = samples_n * B_n / sum_k samples_k * B_k`` (docs/algorithm.md section 6)."""
    w = np.asarray(samples, dtype=np.float64) * np.asarray(budgets, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return np.full(len(w), 1.0 / max(1, len(w)))
    return w / total


def bit_statistics(
    bits_up: Sequence[Sequence[int]],
    reductions: Sequence[Sequence[int]],
    omega: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``b_bar[l] = round(sum omega_n b~_n[l])``, ``D_bar[l] = round(sum omega_n D_n[l] + 1)``."""
    b = np.asarray(bits_up, dtype=np.float64)
    d = np.asarray(reductions, dtype=np.float64)
    b_bar = np.rint(omega @ b).astype(np.int64)
    d_bar = np.rint(omega @ d + 1.0).astype(np.int64)
    return np.clip(b_bar, MIN_BITS, MAX_BITS), d_bar


def layer_priority(layer_w: Sequence[float], d_bar: np.ndarray) -> np.ndarray:
    """``pi[l] = w_l * D_bar[l]``: large layers that clients pruned most go first."""
    return np.asarray(layer_w, dtype=np.float64) * np.asarray(d_bar, dtype=np.float64)


def uniform_bits(budget: float, n: int) -> tuple[int, ...]:
    """Every layer at ``floor(budget)`` bits, within 1..8 (AQFL's rule; FedMPQ's first round
    under the authors' allocation)."""
    b = int(min(MAX_BITS, max(MIN_BITS, math.floor(budget + _EPS))))
    return tuple([b] * n)


def first_allocation(layer_w: Sequence[float], budget: float) -> tuple[int, ...]:
    """FedMPQ's strict allocation before any client has reported: pruning-growing from 8 bits
    everywhere with priority = layer size (the largest layers lose bits first)."""
    n = len(layer_w)
    prio = layer_priority(layer_w, np.ones(n, dtype=np.int64))
    return tuple(prune_grow([MAX_BITS] * n, prio, layer_w, budget))


def prune_grow_reference(
    b_bar: Sequence[float],
    priority: Sequence[float],
    layer_w: Sequence[float],
    budget: float,
    *,
    min_bits: int = MIN_BITS,
    max_bits: int = MAX_BITS,
) -> list[int]:
    """The authors' code's pruning-growing (``Server_FedMPQ.pruning_or_growing``), faithfully.

    PRUNE: the cursor starts at the highest priority and takes one bit at a time while the
    average exceeds the budget; a layer at ``min_bits`` is retired (its priority set to
    -inf) and the cursor moves to the next highest. GROW mirrors it from the lowest priority
    up to ``max_bits``, and stops only once the average *reaches* the budget, so the last
    step may end one layer's share above it (2.018 / 4.012 / 6.075 bits for budgets 2/4/6 on
    ResNet-20). ``np.argmax``/``np.argmin`` give equal priorities to the lowest layer index.
    The average is accumulated in the code's order (float64), so even the float comparisons
    agree with it.
    """
    w = np.asarray(layer_w, dtype=np.float64)
    b = [round(float(x)) for x in b_bar]
    n = len(b)
    avg = 0.0
    for i in range(n):
        avg += float(w[i]) * b[i]
    prio = np.array(priority, dtype=np.float64)
    cursor, count = int(np.argmax(prio)), 0
    while avg > budget and count < n:
        if b[cursor] > min_bits:
            b[cursor] -= 1
            avg -= float(w[cursor])
        else:
            prio[cursor] = -np.inf
            cursor, count = int(np.argmax(prio)), count + 1
    prio = np.array(priority, dtype=np.float64)
    cursor, count = int(np.argmin(prio)), 0
    while avg < budget and count < n:
        if b[cursor] < max_bits:
            b[cursor] += 1
            avg += float(w[cursor])
        else:
            prio[cursor] = np.inf
            cursor, count = int(np.argmin(prio)), count + 1
    return b


def prune_grow(
    b_bar: Sequence[int],
    priority: Sequence[float],
    layer_w: Sequence[float],
    budget: float,
    *,
    min_bits: int = MIN_BITS,
    max_bits: int = MAX_BITS,
) -> list[int]:
    """Fit ``b_bar`` to one client's budget, never above it (``allocation: strict``).

    PRUNE from the highest-priority layer while the average exceeds the budget; GROW from the
    lowest-priority layer while there is room. Decision: a growth step that would exceed the
    budget is skipped and the cursor moves on, so the result never exceeds the budget (the
    reference code may overshoot by one layer's share). Ties in priority break by layer index
    (stable sort), so the result is deterministic.
    """
    w = np.asarray(layer_w, dtype=np.float64)
    b = np.clip(np.asarray(b_bar, dtype=np.int64).copy(), min_bits, max_bits)
    order_desc = list(np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable"))
    avg = float(w @ b)

    # PRUNE
    i = 0
    while avg > budget + _EPS and i < len(order_desc):
        c = order_desc[i]
        if b[c] > min_bits:
            b[c] -= 1
            avg -= w[c]
        else:
            i += 1

    # GROW (cursor from the lowest priority up)
    order_asc = order_desc[::-1]
    i = 0
    while i < len(order_asc):
        c = order_asc[i]
        if b[c] < max_bits and avg + w[c] <= budget + _EPS:
            b[c] += 1
            avg += w[c]
        else:
            i += 1
    return [int(x) for x in b]
