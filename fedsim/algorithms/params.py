"""Hyperparameter schemas of each algorithm (torch-free, so validation stays fast).

Each entry validates the method-specific keys that sit in a scenario's ``algorithm:`` block
beside the shared ones (lr, momentum, local_epochs, ...). Defaults follow FEDMPQ.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FedAvgParams(_Params):
    """FP32 FedAvg: float local training, weighted average of models."""

    aggregation: Literal["samples", "uniform"] = "samples"


ALGORITHM_PARAMS: dict[str, type[BaseModel]] = {
    "fedavg": FedAvgParams,
}
