"""Client selection policies: which online clients train next.

A policy ranks candidates; the engine takes the first ``k``. All randomness comes from the
stream the engine passes (per run seed, purpose and round), never a global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SelectionState:
    """What policies may look at: battery levels and what clients reported last."""

    battery_j: Mapping[int, float]
    last_loss: dict[int, float] = field(default_factory=dict)
    samples: Mapping[int, int] = field(default_factory=dict)
    expected_s: Mapping[int, float] = field(default_factory=dict)


Policy = Callable[[Sequence[int], int, np.random.Generator, SelectionState], list[int]]


def random_policy(cands: Sequence[int], k: int, g: np.random.Generator,
                  state: SelectionState) -> list[int]:
    """Uniform sample without replacement (FedAvg's default)."""
    if k >= len(cands):
        return sorted(cands)
    idx = g.choice(len(cands), size=k, replace=False)
    return sorted(cands[i] for i in idx)


def energy_policy(cands: Sequence[int], k: int, g: np.random.Generator,
                  state: SelectionState) -> list[int]:
    """Prefer clients with the most energy left (mains-powered first); random tie-break."""
    noise = g.uniform(size=len(cands))
    order = sorted(range(len(cands)),
                   key=lambda i: (-state.battery_j.get(cands[i], np.inf), noise[i]))
    return sorted(cands[i] for i in order[:k])


def oort_policy(cands: Sequence[int], k: int, g: np.random.Generator,
                state: SelectionState, *, explore: float = 0.1, alpha: float = 2.0) -> list[int]:
    """Oort-style utility (Lai et al., OSDI 2021): statistical utility
    ``samples * sqrt(last loss)`` times a penalty ``(T / t_i)^alpha`` for clients slower than
    the median expected duration ``T``; a fraction ``explore`` is spent on unexplored
    clients, chosen at random."""
    if k >= len(cands):
        return sorted(cands)
    unexplored = [c for c in cands if c not in state.last_loss]
    n_explore = min(len(unexplored), max(0, round(explore * k))) if unexplored else 0
    if len(unexplored) >= len(cands):
        n_explore = k
    picked: list[int] = []
    if n_explore:
        idx = g.choice(len(unexplored), size=n_explore, replace=False)
        picked = [unexplored[i] for i in idx]
    rest = [c for c in cands if c not in picked]
    times = [state.expected_s.get(c, 0.0) for c in rest]
    t_pref = float(np.median(times)) if times else 0.0

    def utility(c: int) -> float:
        u = state.samples.get(c, 1) * np.sqrt(max(state.last_loss.get(c, 1.0), 1e-12))
        t = state.expected_s.get(c, 0.0)
        if t_pref > 0 and t > t_pref:
            u *= (t_pref / t) ** alpha
        return float(u)

    noise = g.uniform(size=len(rest))
    order = sorted(range(len(rest)), key=lambda i: (-utility(rest[i]), noise[i]))
    picked += [rest[i] for i in order[: k - len(picked)]]
    return sorted(picked)


POLICIES: dict[str, Policy] = {
    "random": random_policy,
    "energy": energy_policy,
    "oort": oort_policy,
}
