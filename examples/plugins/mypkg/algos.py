"""An algorithm plug-in: FedAvg with server momentum (FedAvgM, Hsu et al. 2019).

A subclass of fedsim's Algorithm (here of its FedAvg); its own scenario keys are the fields
of ``Params`` (``algorithm.server_momentum``), validated like a built-in method's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from fedsim.algorithms.base import ClientUpdate
from fedsim.algorithms.fedavg import FedAvg


class FedAvgM(FedAvg):
    name = "fedavgm"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        aggregation: str = "samples"
        server_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9

    def __init__(self, hyper: Any, params: Any, spec: Any) -> None:
        super().__init__(hyper, params, spec)
        self._velocity: dict[str, torch.Tensor] = {}

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        before = {k: v.clone() for k, v in self.global_state.items()}
        super().aggregate(round, updates)  # plain FedAvg average into global_state
        beta = float(self.params.server_momentum)
        for k, new in self.global_state.items():
            if not torch.is_floating_point(new):
                continue
            step = new - before[k]
            v = self._velocity.get(k)
            v = step if v is None else beta * v + step
            self._velocity[k] = v
            self.global_state[k] = before[k] + v

    def server_state(self) -> dict[str, Any]:
        """The velocity is server state: checkpointed, so a resumed run continues it."""
        return {**super().server_state(), "velocity": dict(self._velocity)}

    def load_server_state(self, state: dict[str, Any]) -> None:
        super().load_server_state(state)
        self._velocity = dict(state.get("velocity", {}))
