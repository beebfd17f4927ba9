"""The engine's view of the hardware models: per-client compute, transfer and memory costs.

Torch-free (it reads only the layer table, bit vectors and profiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.engine.types import PhaseCost
from fedsim.hardware import check_memory, train_cost, transfer_cost
from fedsim.payload import model_payload_bits
from fedsim.runner.fleet import FleetClient
from fedsim.seeding import keyed_normals
from fedsim.spec import ModelSpec


# ---------------------------------------------------------------------------------------------
# Cost oracle: the engine's view of the hardware models
# ---------------------------------------------------------------------------------------------
class HardwareCost:
    """Per-client compute/transfer/memory costs from profiles, the layer table and bits.

    The cost functions are pure, and clients of a fleet group share one profile object, so
    results are memoised per (profile, bits, batch, steps): a 10^5-client system-only run
    evaluates each distinct configuration once. Link speed factors are drawn for the whole
    fleet at once, on first use, from counter-based streams keyed by (seed, client)
    (:func:`fedsim.seeding.keyed_normals`): the per-client engine and the vectorised one
    read the very same array.
    """

    def __init__(
        self,
        fleet: Sequence[FleetClient],
        spec: ModelSpec,
        *,
        act_bits: int | None,
        batch_size: int,
        samples: Sequence[int],
        seed: int,
    ) -> None:
        self.fleet = {c.client_id: c for c in fleet}
        self.spec = spec
        self.act_bits = act_bits
        self.batch_size = batch_size
        self.seed = seed
        self.samples: Any = list(samples)  # by row; ids are rows in a dense fleet
        assert len(self.samples) == len(fleet)
        self._factors: tuple[np.ndarray, np.ndarray] | None = None
        self._dense = all(c.client_id == i for i, c in enumerate(fleet))
        self._row: Any = (range(len(fleet)) if self._dense
                          else {c.client_id: i for i, c in enumerate(fleet)})
        self._links: dict[str, np.ndarray] | None = None
        self._link_of = np.zeros(0, dtype=np.int64)
        self._compute: dict[tuple[int, tuple[int, ...], int, int], PhaseCost] = {}
        self._memory: dict[tuple[int, tuple[int, ...], int], str | None] = {}
        self._payload: dict[tuple[int, ...], int] = {}
        self._avg: dict[tuple[int, ...], float] = {}

    def factor_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(up, down) link speed factors of every client, in fleet order: log-normal with
        median 1 and the link's ``spread_sigma`` (exactly 1 where the spread is 0)."""
        if self._factors is None:
            ids = np.fromiter(self.fleet, dtype=np.int64, count=len(self.fleet))
            sigma = np.array([c.link.spread_sigma for c in self.fleet.values()], dtype=float)
            up = np.exp(sigma * keyed_normals(self.seed, ("bandwidth", "up"), ids))
            down = np.exp(sigma * keyed_normals(self.seed, ("bandwidth", "down"), ids))
            up[sigma == 0] = 1.0
            down[sigma == 0] = 1.0
            self._factors = (up, down)
        return self._factors

    def bandwidth_factors(self, cid: int) -> tuple[float, float]:
        """(up, down) speed factors of one client's link."""
        up, down = self.factor_arrays()
        row = self._row[cid]
        return float(up[row]), float(down[row])

    def samples_of(self, cid: int) -> int:
        """The client's training samples."""
        return int(self.samples[self._row[cid]])

    def batch_size_of(self, cid: int) -> int:
        """The batch a client trains with (its shard may be smaller than the batch)."""
        return max(1, min(self.batch_size, self.samples_of(cid)))

    def compute(self, client_id: int, bits: Sequence[int], steps: int) -> PhaseCost:
        prof = self.fleet[client_id].profile
        key = (id(prof), tuple(bits), self.batch_size_of(client_id), steps)
        if key not in self._compute:
            c = train_cost(prof, self.spec, bits, act_bits=self.act_bits,
                           batch_size=key[2], steps=steps)
            self._compute[key] = PhaseCost(c.time_s, c.energy_j)
        return self._compute[key]

    def payload_bits(self, bits: Sequence[int]) -> int:
        key = tuple(bits)
        if key not in self._payload:
            self._payload[key] = model_payload_bits(self.spec, key)
        return self._payload[key]

    def transfer(self, client_id: int, bits: Sequence[int], direction: str) -> PhaseCost:
        payload = self.payload_bits(bits)
        up, down = self.bandwidth_factors(client_id)
        t = transfer_cost(
            self.fleet[client_id].link, payload, direction=direction,  # type: ignore[arg-type]
            bandwidth_factor=up if direction == "up" else down,
        )
        return PhaseCost(t.time_s, t.energy_j, payload)

    def transfer_many(self, cids: np.ndarray, payload_bits: np.ndarray,
                      direction: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transfer` for many clients at once: (time_s, energy_j) arrays, computed
        with the scalar path's operations in its order (the results agree to the bit)."""
        if self._links is None:
            self._link_table()
        assert self._links is not None
        rows = cids if self._dense else np.fromiter(
            (self._row[c] for c in cids.tolist()), dtype=np.int64, count=len(cids))
        up, down = self.factor_arrays()
        factor = (up if direction == "up" else down)[rows]
        p = self._links[direction][self._link_of[rows]]
        rate, base_w, per_w, rtt, duty, promo_s, promo_w, tail_s, tail_w = p.T
        bits = payload_bits.astype(np.float64)
        rate_mbps = rate * factor
        airtime = bits / (rate_mbps * 1e6)
        time_s = promo_s + rtt + airtime / duty
        energy_j = (promo_w * promo_s + base_w * rtt + (base_w + per_w * rate_mbps) * airtime
                    + tail_w * tail_s)
        none = payload_bits == 0
        time_s[none] = 0.0
        energy_j[none] = 0.0
        return time_s, energy_j

    def _link_table(self) -> None:
        """Each distinct link's parameters per direction, and each client's link."""
        index: dict[int, int] = {}
        links = []
        link_of = np.empty(len(self.fleet), dtype=np.int64)
        for i, c in enumerate(self.fleet.values()):
            j = index.get(id(c.link))
            if j is None:
                j = index[id(c.link)] = len(links)
                links.append(c.link)
            link_of[i] = j
        self._link_of = link_of
        self._links = {}
        for direction in ("up", "down"):
            rows = []
            for link in links:
                rate, base, per = ((link.up_mbps, link.tx_w, link.up_w_per_mbps)
                                   if direction == "up" else
                                   (link.down_mbps, link.rx_w, link.down_w_per_mbps))
                rows.append((rate, base, per, link.rtt_s, link.duty_cycle, link.promotion_s,
                             link.promotion_w, link.tail_s, link.tail_w))
            self._links[direction] = np.array(rows, dtype=np.float64)

    def memory_problem(self, client_id: int, bits: Sequence[int]) -> str | None:
        prof = self.fleet[client_id].profile
        key = (id(prof), tuple(bits), self.batch_size_of(client_id))
        if key not in self._memory:
            self._memory[key] = check_memory(prof, self.spec, bits, batch_size=key[2],
                                             act_bits=self.act_bits)
        return self._memory[key]

    def idle_power_w(self, client_id: int) -> float:
        return float(self.fleet[client_id].profile.power.idle_w)

    def avg_bits(self, bits: Sequence[int]) -> float:
        key = tuple(bits)
        if key not in self._avg:
            self._avg[key] = self.spec.avg_bits(key)
        return self._avg[key]
