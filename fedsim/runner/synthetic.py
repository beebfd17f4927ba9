"""A trainer port without training, for system-only fleet studies (10^5 clients).

The engine cannot tell it from real training: it answers downlink bit vectors from a policy,
completes every task at once with the bits it received, and has nothing to aggregate or
evaluate (accuracy is NaN). Time, energy, memory and payload still come from the hardware
models, so the same engine answers "who can join, at what precision, at what cost" for a
whole population.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from concurrent.futures import Future

from fedsim.algorithms.bitalloc import MAX_BITS, first_allocation, uniform_bits
from fedsim.engine.types import EvalResult, WorkItem, WorkResult
from fedsim.spec import FLOAT_BITS, ModelSpec


class SyntheticRule:
    """The bits a system-only run gives a budget, in the methods' ``bits_at`` /
    ``budget_choices`` shape, so ``budget_bits: auto`` plans what the port will send."""

    def __init__(self, spec: ModelSpec, policy: str) -> None:
        self.n = spec.n_quantized
        self.policy = policy
        self.layer_w = spec.layer_weights()
        self.budget_choices: tuple[float, ...] = (
            (FLOAT_BITS,) if policy == "float" else (MAX_BITS,) if policy == "max"
            else (1, 2, 3, 4, 5, 6, 7, 8))

    def bits_at(self, budget: float) -> tuple[int, ...]:
        if self.policy == "float":
            return (FLOAT_BITS,) * self.n
        if self.policy == "max":
            return (MAX_BITS,) * self.n
        if self.policy == "budget":
            return uniform_bits(budget, self.n)
        return first_allocation(self.layer_w, budget)


class SyntheticPort:
    """Answers the engine like :class:`~fedsim.runner.ports.TrainingPort` without training.

    ``policy`` picks the downlink rule from the methods' own (``fedsim.algorithms.bitalloc``):
    ``budget`` is AQFL's uniform floor of the budget, ``fedmpq`` FedMPQ's allocation before
    any report, ``max`` FPQ8's 8 bits, ``float`` a float method's 32 bits. Vectors are cached
    per budget: a fleet of 10^6 clients has a handful of distinct budgets.
    """

    synthetic = True  # the engine may run its rounds vectorised (engine.batchsync)

    def __init__(self, spec: ModelSpec, budgets: MutableMapping[int, float], policy: str) -> None:
        self.spec = spec
        self.budgets = budgets
        self.policy = policy
        self._cache: dict[float, tuple[int, ...]] = {}
        self.rule = SyntheticRule(spec, policy)

    def _bits(self, budget: float) -> tuple[int, ...]:
        if budget not in self._cache:
            self._cache[budget] = self.rule.bits_at(budget)
        return self._cache[budget]

    def set_budget(self, client_id: int, budget_bits: float) -> None:
        self.budgets[client_id] = budget_bits

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
