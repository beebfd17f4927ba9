"""Hyperparameter schemas of each algorithm (torch-free, so validation stays fast).

Each entry validates the method-specific keys that sit in a scenario's ``algorithm:`` block
beside the shared ones (lr, momentum, local_epochs, ...). Defaults: docs/algorithm.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FedAvgParams(_Params):
    """FP32 FedAvg: float local training, weighted average of models."""

    aggregation: Literal["samples", "uniform"] = "samples"


class FedProxParams(FedAvgParams):
    """FedProx: proximal coefficient mu (Li et al. 2020 tune it in {0.001, 0.01, 0.1, 1})."""

    mu: Annotated[float, Field(ge=0, le=100)] = 0.01


class FedPAQParams(FedAvgParams):
    """FedPAQ: float training, unbiased stochastic quantization of the uploaded difference."""


class UVeQFedParams(FedAvgParams):
    """UVeQFed: float training, dithered hexagonal-lattice quantization of the difference."""


class BitPlaneParams(_Params):
    """Bit-plane methods (FedMPQ, AQFL, FPQ8).

    Defaults follow the authors' code (the ground truth fedsim is held to), except where the
    code is defective: ``init`` defaults to one common initialisation (docs/fidelity.md).

    The options that decide how closely fedsim follows the authors' code
    (docs/fidelity.md measures each):

    * ``update_rule``: ``paper`` (the paper-time power-of-two step, ``rounding`` picks
      round or ceil) or ``reference`` (the code's later optimizer that produced the reference
      run, quirks included);
    * ``init``: ``common`` (one broadcast initialisation) or ``per_client`` (every client
      draws its own in the first round, as the code does);
    * ``allocation``: ``reference`` (the code's pruning-growing: round 1 at the budget in
      every layer, growth may end one step above the budget, ties to the lowest layer index)
      or ``strict`` (never above the budget, for budgets that are hard device limits);
    * ``bias``: ``planes`` stores the biases of quantized layers as bit planes with a
      trainable scale, re-encoded at the layer's bits every downlink (the code's FC bias), or
      ``float``;
    * ``msb_merge``: how precision reduction merges a sparse top plane into the lower ones:
      ``code`` (from a snapshot, so only the last plane dropped is ORed in) or ``cumulative``
      (every sparse plane ORed in, no set bit lost);
    * ``eval_act_bits``: activation bits of the evaluated global model (the code uses 16,
      with the same ReLU6 clip as the clients; ``null`` evaluates float activations).
    """

    lam: Annotated[float, Field(ge=0, le=10)] = 1e-3
    epsilon: Annotated[float, Field(ge=0, lt=1)] = 0.02
    act_bits: Annotated[int, Field(ge=1, le=16)] | None = 4
    update_rule: Literal["paper", "reference"] = "reference"
    rounding: Literal["round", "ceil"] = "round"
    init: Literal["common", "per_client"] = "common"
    allocation: Literal["reference", "strict"] = "reference"
    bias: Literal["float", "planes"] = "planes"
    msb_merge: Literal["code", "cumulative"] = "code"
    eval_act_bits: Annotated[int, Field(ge=1, le=16)] | None = 16
    aggregation: Literal["samples", "uniform"] = "uniform"
    float_lr: Annotated[float, Field(gt=0, le=100)] | None = None


ALGORITHM_PARAMS: dict[str, type[BaseModel]] = {
    "fedmpq": BitPlaneParams,
    "aqfl": BitPlaneParams,
    "fpq8": BitPlaneParams,
    "fedavg": FedAvgParams,
    "fedprox": FedProxParams,
    "fedpaq": FedPAQParams,
    "uveqfed": UVeQFedParams,
}


class NoParams(_Params):
    """A plug-in algorithm without a ``Params`` class takes no keys of its own."""


def params_schema(name: str) -> type[BaseModel]:
    """The schema of a method's own keys: built in, or a plug-in class's ``Params``."""
    if name in ALGORITHM_PARAMS:
        return ALGORITHM_PARAMS[name]
    from fedsim.plugins import algorithm_plugin

    return getattr(algorithm_plugin(name), "Params", None) or NoParams
