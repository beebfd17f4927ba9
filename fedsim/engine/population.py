"""The fleet as arrays, for the vectorised server: who is who, their batteries and windows.

Why a module of its own: the vectorised synchronous server (:mod:`fedsim.engine.batchsync`)
works on whole populations at once, so it needs every per-client quantity the per-client
engine keeps in dicts and objects as one array, in client-id order, plus the *cohorts*:
clients that share a fleet group, a budget and a shard size cost exactly the same apart
from their link draw, so the cost model is asked once per cohort, not once per client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedsim.engine.availability import AlwaysOn, AvailabilityModel, Diurnal
from fedsim.engine.dynamics import ClientDynamics
from fedsim.engine.types import ClientDesc


class Population:
    """Per-client arrays (row i is the i-th smallest client id) and the cohorts."""

    def __init__(self, clients: Mapping[int, ClientDesc], ids: Sequence[int],
                 dynamics: Mapping[int, ClientDynamics]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        n = len(self.ids)
        cohort_of: dict[tuple[str, float, int], int] = {}
        self.cohort = np.empty(n, dtype=np.int64)
        self.reps: list[int] = []  # a representative client of each cohort
        self.samples = np.empty(n, dtype=np.int64)
        self.failure_prob = np.zeros(n)
        self.has_battery = np.zeros(n, dtype=bool)
        self.level = np.zeros(n)
        self.floor = np.zeros(n)
        self.capacity = np.zeros(n)
        for i, cid in enumerate(self.ids.tolist()):
            desc = clients[cid]
            key = (desc.group, desc.budget_bits, desc.samples)
            c = cohort_of.get(key)
            if c is None:
                c = cohort_of[key] = len(self.reps)
                self.reps.append(cid)
            self.cohort[i] = c
            self.samples[i] = desc.samples
            d = dynamics[cid]
            self.failure_prob[i] = d.failure_prob
            if d.battery_capacity_j is not None:
                self.has_battery[i] = True
                self.level[i] = d.battery_level_j
                self.floor[i] = d.battery_floor_j
                self.capacity[i] = d.battery_capacity_j
        self.descs = [clients[cid] for cid in self.reps]
        self.any_battery = bool(self.has_battery.any())

    def rows(self, cids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, cids)

    def spendable(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Energy above the floor (``inf`` on mains power), as ``Batteries.spendable_j``."""
        if not self.any_battery:
            n = len(self.ids) if isinstance(rows, slice) else len(rows)
            return np.full(n, math.inf)
        out = self.level[rows] - self.floor[rows]
        out[~self.has_battery[rows]] = math.inf
        return out

    def drain(self, rows: np.ndarray, energy_j: np.ndarray) -> None:
        """Spend energy, never below 0 (``Batteries.drain`` on many clients)."""
        b = self.has_battery[rows]
        r = rows[b]
        self.level[r] = np.maximum(0.0, self.level[r] - energy_j[b])

    def write_back(self, dynamics: Mapping[int, ClientDynamics]) -> None:
        """Leave the battery levels in the fleet's dynamics objects, as the per-client
        engine does (whoever built the fleet reads them)."""
        for i in np.flatnonzero(self.has_battery).tolist():
            dynamics[int(self.ids[i])].battery_level_j = float(self.level[i])

    def battery_snapshot(self) -> dict[str, float]:
        rows = np.flatnonzero(self.has_battery)
        return dict(zip(map(str, self.ids[rows].tolist()), self.level[rows].tolist(),
                        strict=True))


class OnlineCursor:
    """Which clients are online at a time, and when each one's current window ends.

    Diurnal availability is evaluated in closed form for all clients at once (the same
    expression as :meth:`Diurnal.window`); any other model walks each client's own window
    iterator, and only for clients whose window has passed.
    """

    def __init__(self, model: AvailabilityModel, ids: np.ndarray) -> None:
        self.model = model
        self.ids = ids
        self.always = isinstance(model, AlwaysOn) or (
            isinstance(model, Diurnal) and model.online_fraction >= 1.0)
        self.diurnal = isinstance(model, Diurnal) and model.online_fraction < 1.0
        self._start: np.ndarray | None = None
        self._end = np.zeros(0)
        if self.diurnal:
            self.phase = model.phases(ids)  # type: ignore[attr-defined]
        elif not self.always:
            self.iters: list[Any] = [model.windows(int(c)) for c in ids.tolist()]
            self.start = np.full(len(ids), math.inf)
            self.end = np.full(len(ids), -math.inf)
            self.done = np.zeros(len(ids), dtype=bool)

    def windows_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(online now, end of the current window) for every client."""
        n = len(self.ids)
        if self.always:
            return np.ones(n, dtype=bool), np.full(n, math.inf)
        if self.diurnal:
            return self._diurnal_at(t)
        stale = np.flatnonzero((self.end <= t) & ~self.done)
        for i in stale.tolist():
            it = self.iters[i]
            while True:
                nxt = next(it, None)
                if nxt is None:
                    self.done[i] = True
                    self.start[i], self.end[i] = math.inf, -math.inf
                    break
                if nxt[1] > t:
                    self.start[i], self.end[i] = nxt
                    break
        online = (self.start <= t) & (self.end > t)
        return online, self.end.copy()

    def _diurnal_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Each client's current (or, when offline, next) window, kept between calls and
        recomputed only for clients whose window has ended: rounds are seconds apart,
        days are not."""
        if self._start is None:
            self._start, self._end = self._diurnal_windows(self.phase, t)
        else:
            stale = np.flatnonzero(self._end <= t)
            if len(stale):
                self._start[stale], self._end[stale] = self._diurnal_windows(
                    self.phase[stale], t)
        online = (self._start <= t) & (self._end > t)
        return online, self._end

    def _diurnal_windows(self, phase: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of the window holding ``t``, or of the next one."""
        m: Diurnal = self.model  # type: ignore[assignment]
        k = np.floor(t / m.period_s + phase)
        start, end = m.window(phase, k)
        later = start > t  # rounding put us one window ahead
        if later.any():
            start[later], end[later] = m.window(phase[later], k[later] - 1)
        over = end <= t  # offline: the next window
        if over.any():
            start[over], end[over] = m.window(phase[over], k[over] + 1)
        return np.maximum(0.0, start), end
