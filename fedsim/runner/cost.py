"""The engine's view of the hardware models: per-client compute, transfer and memory costs.

Torch-free (it reads only the layer table, bit vectors and profiles).
"""

from __future__ import annotations

from collections.abc import Sequence

from fedsim.engine.types import PhaseCost
from fedsim.hardware import check_memory, sample_bandwidth_factor, train_cost, transfer_cost
from fedsim.payload import model_payload_bits
from fedsim.runner.fleet import FleetClient
from fedsim.seeding import rng
from fedsim.spec import ModelSpec


# ---------------------------------------------------------------------------------------------
# Cost oracle: the engine's view of the hardware models
# ---------------------------------------------------------------------------------------------
class HardwareCost:
    """Per-client compute/transfer/memory costs from profiles, the layer table and bits.

    The cost functions are pure, and clients of a fleet group share one profile object, so
    results are memoised per (profile, bits, batch, steps): a 10^5-client system-only run
    evaluates each distinct configuration once. Link speed factors are drawn lazily, each
    from its own (seed, client) stream, so only clients that transfer pay for the draw.
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
        self.samples = dict(zip([c.client_id for c in fleet], samples, strict=True))
        self._bw: dict[int, tuple[float, float]] = {}
        self._compute: dict[tuple[int, tuple[int, ...], int, int], PhaseCost] = {}
        self._memory: dict[tuple[int, tuple[int, ...], int], str | None] = {}
        self._payload: dict[tuple[int, ...], int] = {}
        self._avg: dict[tuple[int, ...], float] = {}

    def bandwidth_factors(self, cid: int) -> tuple[float, float]:
        """(up, down) speed factors of a client's link (log-normal around the profile)."""
        if cid not in self._bw:
            link = self.fleet[cid].link
            if link.spread_sigma == 0:
                self._bw[cid] = (1.0, 1.0)
            else:
                self._bw[cid] = (
                    sample_bandwidth_factor(link, rng(self.seed, "bandwidth", cid, "up")),
                    sample_bandwidth_factor(link, rng(self.seed, "bandwidth", cid, "down")),
                )
        return self._bw[cid]

    def batch_size_of(self, cid: int) -> int:
        """The batch a client trains with (its shard may be smaller than the batch)."""
        return max(1, min(self.batch_size, self.samples[cid]))

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
