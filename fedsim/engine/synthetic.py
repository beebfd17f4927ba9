"""A trainer port without training, for system-only fleet studies (10^5 clients).

The engine cannot tell it from real training: it answers downlink bit vectors from a policy,
completes every task at once with the bits it received, and has nothing to aggregate or
evaluate (accuracy is NaN). Time, energy, memory and payload still come from the hardware
models, so the same engine answers "who can join, at what precision, at what cost" for a
whole population.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future

from fedsim.algorithms.bitalloc import prune_grow
from fedsim.engine.types import EvalResult, WorkItem, WorkResult
from fedsim.spec import FLOAT_BITS, ModelSpec


class SyntheticPort:
    def __init__(self, spec: ModelSpec, budgets: Mapping[int, float], policy: str) -> None:
        self.spec = spec
        self.budgets = budgets
        self.policy = policy
        self._cache: dict[float, tuple[int, ...]] = {}
        self._w = spec.layer_weights()

    def _bits(self, budget: float) -> tuple[int, ...]:
        if budget not in self._cache:
            n = self.spec.n_quantized
            if self.policy == "float":
                b = (FLOAT_BITS,) * n
            elif self.policy == "max":
                b = (8,) * n
            elif self.policy == "budget":
                b = (int(min(8, max(1, math.floor(budget + 1e-9)))),) * n
            else:
                b = tuple(prune_grow([8] * n, self._w, self._w, budget))
            self._cache[budget] = b
        return self._cache[budget]

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return {cid: self._bits(self.budgets[cid]) for cid in client_ids}

    def submit(self, item: WorkItem) -> Future[WorkResult]:
        fut: Future[WorkResult] = Future()
        fut.set_result(WorkResult(item.round, item.client_id, item.bits, item.samples, 1.0))
        return fut

    def discard(self, key: tuple[int, int, int]) -> None:
        pass

    def aggregate(self, round: int, keys: Sequence[tuple[int, int, int]]) -> None:
        pass

    def aggregate_async(self, round: int, keys: Sequence[tuple[int, int, int]],
                        staleness: Sequence[int]) -> None:
        pass

    def evaluate(self, round: int) -> EvalResult:
        return EvalResult(accuracy=math.nan, loss=math.nan)
