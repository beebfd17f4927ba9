"""Battery-adaptive budgets (``budget_bits: {auto: true, adapt: battery}``).

Before each dispatch the budgets of adapting clients are derived again from what their
battery can pay *now*, with the same planner that set the first budget, so a device that is
running down steps to a lower precision instead of dropping out; the new budget reaches the
method (its downlink rule), the engine (the client's record in clients.csv) and, for
system-only runs, the synthetic port. Everything else passes through to the wrapped port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fedsim.runner.budgets import ClientPlan, Limits, Planner


class AdaptiveBudgets:
    """Wraps the engine's trainer port; re-plans adapting clients at every downlink."""

    def __init__(self, inner: Any, planner: Planner, plans: Sequence[ClientPlan],
                 deadline_s: float | None) -> None:
        self.inner = inner
        self.planner = planner
        self.deadline_s = deadline_s
        self.adapting = {p.client.client_id: p.client for p in plans
                         if p.client.auto is not None and p.client.auto.adapt == "battery"
                         and not p.excluded}
        self.lowest = min(planner.choices)
        self._engine: Any = None

    def watch(self, engine: Any) -> None:
        self._engine = engine

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        for cid in client_ids:
            client = self.adapting.get(cid)
            if client is None:
                continue
            assert client.auto is not None
            limits = Limits(self.deadline_s, client.auto.energy_j,
                            self._engine.batteries.spendable_j(cid)
                            if self._engine.batteries.has(cid) else None)
            # Nothing fits: keep the lowest; the engine's battery check then says why.
            budget = self.planner.plan(client, limits).budget or self.lowest
            if budget != self._engine.clients[cid].budget_bits:
                self._engine.set_budget(cid, float(budget))
                self.inner.set_budget(cid, float(budget))
        return self.inner.downlink_bits(round, client_ids)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
