"""The small protocol every federated method implements.

Ten hooks, like a Flower strategy, but typed; two are abstract, the others have defaults:

* ``client_update`` (client, runs on a worker, pure): local training from the global state;
* ``aggregate`` (server): fold the reported updates into the new global state;
* ``setup`` (server): the initial global state and the fleet;
* ``downlink_bits`` (server): the bit vector each selected client receives this round
  (default: every quantized layer at 32 bits);
* ``aggregate_async`` (server): FedBuff's staleness-weighted buffered aggregation;
* ``after_aggregate`` (server): statistics that follow an aggregation (FedMPQ's bits);
* ``eval_model`` / ``eval_state`` (server): the module and state tested as the global model;
* ``server_state`` / ``load_server_state`` (server): extra state kept in checkpoints.

Algorithms know nothing of SimPy, devices or executors. They never mutate their inputs and
draw randomness only from the generator a task carries (seeded from run, round, client).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from fedsim.spec import FLOAT_BITS, ModelSpec

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainHyper:
    """Shared local-training hyperparameters (scenario ``algorithm:`` block)."""

    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    local_epochs: int
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1

    def lr_at(self, round: int) -> float:
        """Step schedule by global round, not by optimizer age (docs/algorithm.md section 8)."""
        passed = sum(1 for m in self.lr_milestones if round >= m)
        return self.lr * (self.lr_gamma**passed)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    client_id: int
    budget_bits: float
    samples: int


@dataclass(frozen=True)
class ClientTask:
    """Everything a worker needs for one local update: plain data and tensors, no modules."""

    round: int
    client_id: int
    bits: tuple[int, ...]
    seed: int
    lr: float
    indices: np.ndarray
    global_state: State
    budget_bits: float
    client_state: State | None = None


@dataclass
class ClientUpdate:
    """A client's report: its model (float state, de-quantized) and the bits it used."""

    round: int
    client_id: int
    state: State
    bits_up: tuple[int, ...]
    samples: int
    train_loss: float
    client_state: State | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Algorithm(ABC):
    """Base class: holds the server state; the client side is a pure method."""

    name: ClassVar[str]
    #: activation bits used by clients (None: float activations); feeds the cost model.
    act_bits: int | None = None

    def __init__(self, hyper: TrainHyper, params: BaseModel, spec: ModelSpec) -> None:
        self.hyper = hyper
        self.params = params
        self.spec = spec
        self.global_state: State = {}
        self.clients: dict[int, ClientInfo] = {}

    # -- server side -----------------------------------------------------------------------
    def setup(self, model: nn.Module, clients: Sequence[ClientInfo]) -> None:
        """Broadcast one common initialisation (docs/algorithm.md section 8); learn the fleet."""
        self.global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.clients = {c.client_id: c for c in clients}

    #: The budgets this method can give a client, for ``budget_bits: auto`` to choose from
    #: (a float method trains at 32 bits whatever the budget).
    budget_choices: ClassVar[tuple[float, ...]] = (FLOAT_BITS,)

    def bits_at(self, budget: float) -> tuple[int, ...]:
        """The bit vector a client of budget ``budget`` trains at before any report (the
        first round's downlink). Float methods: 32 bits in every quantized layer."""
        return tuple([FLOAT_BITS] * self.spec.n_quantized)

    def uplink_bits_at(self, budget: float) -> tuple[int, ...]:
        """The bit vector such a client uploads (at most; precision reduction may lower it)."""
        return self.bits_at(budget)

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """The bits each client receives and trains at this round (default: fixed by budget)."""
        return {cid: self.bits_at(self.clients[cid].budget_bits) for cid in client_ids}

    @abstractmethod
    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        """Fold updates (sorted by client id) into ``self.global_state``."""

    #: True when ``ClientUpdate.state`` already holds the difference to the base model
    #: (quantized-uplink methods), False when it holds the trained model itself.
    update_is_delta: bool = False

    def aggregate_async(
        self,
        round: int,
        updates: Sequence[ClientUpdate],
        bases: Sequence[State],
        staleness: Sequence[int],
        *,
        server_lr: float = 1.0,
        weighting: str = "sqrt",
    ) -> None:
        """FedBuff (Nguyen et al., AISTATS 2022): ``w += server_lr * mean_i s(tau_i) delta_i``.

        ``delta_i`` is client i's update relative to the model version it downloaded
        (``bases[i]``); ``s(tau) = 1/sqrt(1+tau)`` (``sqrt``), ``1/(1+tau)`` (``poly``) or 1
        (``constant``). With one client, K=1 and ``server_lr`` 1 this is sequential SGD.
        """
        weights = [staleness_weight(t, weighting) for t in staleness]
        k = len(updates)
        new: State = {}
        for key, g in self.global_state.items():
            if not torch.is_floating_point(g):
                new[key] = updates[-1].state[key].clone()
                continue
            acc = torch.zeros_like(g, dtype=torch.float64)
            for u, base, w in zip(updates, bases, weights, strict=True):
                d = u.state[key].to(torch.float64)
                if not self.update_is_delta:
                    d = d - base[key].to(torch.float64)
                acc.add_(d, alpha=w / k)
            new[key] = (g.to(torch.float64) + server_lr * acc).to(g.dtype)
        self.global_state = new
        self.after_aggregate(updates)

    def after_aggregate(self, updates: Sequence[ClientUpdate]) -> None:
        """Hook for server statistics that follow an aggregation (FedMPQ's bit statistics)."""
        return None

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The module the global state is evaluated in (float methods: the model itself)."""
        return model

    def eval_state(self) -> State:
        """The state evaluated as 'the global model' (float)."""
        return self.global_state

    def server_state(self) -> dict[str, Any]:
        """Extra server state to checkpoint (besides the global model): plain values only."""
        return {}

    def load_server_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`server_state` from a checkpoint."""
        return None

    # -- client side -----------------------------------------------------------------------
    @abstractmethod
    def client_update(
        self, model: nn.Module, task: ClientTask, x: torch.Tensor, y: torch.Tensor
    ) -> ClientUpdate:
        """Local training on (x, y) from ``task.global_state``; returns the report."""


def weighted_average(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> State:
    """Average state dicts with weights summing to 1; integer buffers take the first's value.

    Summation in the given order (callers pass clients sorted by id) so the result is the
    same whatever order the host finished training in.
    """
    total = float(sum(weights))
    out: State = {}
    for key, ref in states[0].items():
        if not torch.is_floating_point(ref):
            out[key] = ref.clone()
            continue
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for s, w in zip(states, weights, strict=True):
            acc.add_(s[key].to(torch.float64), alpha=w / total)
        out[key] = acc.to(ref.dtype)
    return out


def uniform_mean(states: Sequence[Mapping[str, torch.Tensor]]) -> State:
    """Unweighted mean, computed as the authors' code does (``average_weights``): the first
    state plus the others one by one in the given order, in the tensors' own precision, then
    divided by their number. Float64 accumulation (:func:`weighted_average`) differs in the
    last bit, and one ulp is enough for two runs with 4-bit activations to part
    (docs/fidelity.md). Integer buffers take the first state's value.
    """
    out: State = {}
    n = len(states)
    for key, ref in states[0].items():
        if not torch.is_floating_point(ref):
            out[key] = ref.clone()
            continue
        acc = ref.clone()
        for s in states[1:]:
            acc += s[key]
        out[key] = torch.div(acc, n)
    return out


def average(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float],
            mode: str) -> State:
    """The server's model average: :func:`uniform_mean` for ``uniform``, else weighted."""
    return uniform_mean(states) if mode == "uniform" else weighted_average(states, weights)


def staleness_weight(tau: int, kind: str) -> float:
    if kind == "constant":
        return 1.0
    if kind == "poly":
        return 1.0 / (1.0 + tau)
    return 1.0 / float(np.sqrt(1.0 + tau))


def aggregation_weights(updates: Sequence[ClientUpdate], mode: str) -> list[float]:
    if mode == "uniform":
        return [1.0] * len(updates)
    return [float(u.samples) for u in updates]
