"""FedMPQ and its bit-plane baselines (AQFL, FPQ8): one client loop, three server policies.

Client side (docs/algorithm.md sections 2-5): start from the global float model (or, with
``init: per_client``, from its own initialisation in the first round) binarized at the
client's bit vector; in the first round drop empty planes (the code's reduction at init);
train bit planes with the group-Lasso term and power-of-two steps (``update_rule``);
(FedMPQ only) reduce precision; upload the de-quantized model at the reduced bits.

Server side differs by method:
* ``fedmpq``: average, bit statistics and layer priorities, pruning-growing per client
  (``allocation``: the code's rule, or ``strict``), binarize the downlink at that bit vector
  (sections 6-7); before any report every layer starts at the client's budget (``reference``)
  or comes from pruning an all-8 model (``strict``);
* ``aqfl``: each client trains at ``floor(B_n)`` bits in every layer, no reduction;
* ``fpq8``: every client at 8 bits in every layer (an upper reference that ignores budgets).

The global model is evaluated with ``eval_act_bits`` activation fake-quantization (16 in the
code) behind the same ReLU6 clip the clients train with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fedsim.algorithms.base import (
    Algorithm,
    ClientTask,
    ClientUpdate,
    aggregation_weights,
    average,
)
from fedsim.algorithms.bitalloc import (
    MAX_BITS,
    bit_statistics,
    client_weights,
    first_allocation,
    layer_priority,
    prune_grow,
    prune_grow_reference,
    uniform_bits,
)
from fedsim.algorithms.params import BitPlaneParams
from fedsim.algorithms.training import local_sgd


class BitPlaneMethod(Algorithm):
    """Shared client loop; subclasses choose the per-client bit vectors."""

    params: BitPlaneParams
    reduce: bool = False

    def __init__(self, hyper: Any, params: BitPlaneParams, spec: Any) -> None:
        super().__init__(hyper, params, spec)
        self.act_bits = params.act_bits
        self._qmodel: nn.Module | None = None

    # -- client side -----------------------------------------------------------------------
    def client_update(
        self, model: nn.Module, task: ClientTask, x: torch.Tensor, y: torch.Tensor
    ) -> ClientUpdate:
        from fedsim.quant import (
            BitPlaneSGD,
            float_state_dict,
            group_lasso,
            load_float_into_quantized,
            reduce_precision,
            to_quantized,
        )

        p = self.params
        start = task.global_state
        first = task.round == 0
        if first and p.init == "per_client":
            start = self._own_init(model, task.seed)
        if self._qmodel is None:
            # One quantized model per worker, re-binarized in place every task.
            model.load_state_dict(start)
            self._qmodel = to_quantized(model, list(task.bits), act_bits=p.act_bits,
                                        bias_planes=p.bias == "planes")
        qmodel = self._qmodel
        load_float_into_quantized(qmodel, start, list(task.bits))
        bits_before = list(task.bits)
        if first:
            # The code binarizes its initial model and drops the planes that are empty
            # (threshold 0) before it trains; those bits are what round 1 reduces from.
            bits_before, _ = reduce_precision(qmodel, 0.0)
        gen = torch.Generator().manual_seed(task.seed)
        opt = BitPlaneSGD(qmodel, lr=task.lr, momentum=self.hyper.momentum,
                          float_lr=p.float_lr if p.float_lr is not None else None,
                          weight_decay=0.0, rounding=p.rounding, rule=p.update_rule,
                          generator=gen)
        lam = p.lam
        loss = local_sgd(
            qmodel, x, y, optimizer=opt, batch_size=self.hyper.batch_size,
            epochs=self.hyper.local_epochs, generator=gen,
            regulariser=(lambda: group_lasso(qmodel, lam)) if lam > 0 else None,
        )
        if self.reduce:
            new_bits, _ = reduce_precision(qmodel, p.epsilon, merge=p.msb_merge)
            reductions = [b0 - b1 for b0, b1 in zip(bits_before, new_bits, strict=True)]
        else:
            new_bits, reductions = bits_before, [0] * len(bits_before)
        state = {k: v.detach().clone() for k, v in float_state_dict(qmodel).items()}
        return ClientUpdate(
            round=task.round, client_id=task.client_id, state=state,
            bits_up=tuple(int(b) for b in new_bits), samples=int(x.shape[0]),
            train_loss=loss,
            client_state={"reductions": torch.tensor(reductions, dtype=torch.int64)},
        )

    @staticmethod
    def _own_init(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
        """A client's own initial float state (``init: per_client``), seeded per client."""
        import copy

        from fedsim.models import reinitialise_
        from fedsim.seeding import derive_seed

        fresh = reinitialise_(copy.deepcopy(model), derive_seed(seed, "own-init"))
        return {k: v.detach().clone() for k, v in fresh.state_dict().items()}

    # -- server side -----------------------------------------------------------------------
    def eval_model(self, model: nn.Module) -> nn.Module:
        """The float model with ``eval_act_bits`` activation quantizers (ReLU6 clip), as the
        code's global model (16 bits); unchanged when ``eval_act_bits`` is null."""
        from fedsim.quant.convert import with_activation_quant

        bits = self.params.eval_act_bits
        return model if bits is None else with_activation_quant(model, bits)

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        weights = aggregation_weights(updates, self.params.aggregation)
        self.global_state = average([u.state for u in updates], weights,
                                    self.params.aggregation)


class AQFL(BitPlaneMethod):
    """AQFL (Abdelmoniem & Canini 2021): uniform precision per client at its budget."""

    name = "aqfl"
    budget_choices = (1, 2, 3, 4, 5, 6, 7, 8)

    def bits_at(self, budget: float) -> tuple[int, ...]:
        return uniform_bits(budget, self.spec.n_quantized)


class FPQ8(BitPlaneMethod):
    """Fixed 8-bit precision for every client in every layer (budgets ignored)."""

    name = "fpq8"
    budget_choices = (MAX_BITS,)

    def bits_at(self, budget: float) -> tuple[int, ...]:
        return tuple([MAX_BITS] * self.spec.n_quantized)


class FedMPQ(BitPlaneMethod):
    """FedMPQ (Chen & Vikalo, CVPR 2024): mixed precision by pruning-growing per client."""

    name = "fedmpq"
    reduce = True

    def __init__(self, hyper: Any, params: BitPlaneParams, spec: Any) -> None:
        super().__init__(hyper, params, spec)
        n = spec.n_quantized
        self.layer_w = np.asarray(spec.layer_weights())
        # Before any report: every layer at 8 bits, priority = layer size (prune big first).
        self.b_bar = np.full(n, MAX_BITS, dtype=np.int64)
        self.priority = layer_priority(self.layer_w, np.ones(n, dtype=np.int64))
        self.has_stats = False

    budget_choices = (1, 2, 3, 4, 5, 6, 7, 8)

    def bits_at(self, budget: float) -> tuple[int, ...]:
        """Before any report: strict pruning-growing from 8 bits (``strict``), or every layer
        at the budget (``reference``, the code's round 1)."""
        if self.params.allocation == "strict":
            return first_allocation(self.layer_w, budget)
        return uniform_bits(budget, self.spec.n_quantized)

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        if not self.has_stats:
            return super().downlink_bits(round, client_ids)
        out: dict[int, tuple[int, ...]] = {}
        for cid in client_ids:
            budget = self.clients[cid].budget_bits
            if self.params.allocation == "strict":
                out[cid] = tuple(prune_grow(self.b_bar, self.priority, self.layer_w, budget))
            else:
                out[cid] = tuple(prune_grow_reference(self.b_bar, self.priority,
                                                      self.layer_w, budget))
        return out

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        super().aggregate(round, updates)
        self.after_aggregate(updates)

    def after_aggregate(self, updates: Sequence[ClientUpdate]) -> None:
        omega = client_weights([u.samples for u in updates],
                               [self.clients[u.client_id].budget_bits for u in updates])
        reductions = [
            (u.client_state or {}).get("reductions", torch.zeros(len(u.bits_up))).tolist()
            for u in updates
        ]
        self.b_bar, d_bar = bit_statistics([list(u.bits_up) for u in updates], reductions,
                                           omega)
        self.priority = layer_priority(self.layer_w, d_bar)
        self.has_stats = True

    def server_state(self) -> dict[str, Any]:
        return {"b_bar": [int(b) for b in self.b_bar],
                "priority": [float(p) for p in self.priority],
                "has_stats": self.has_stats}

    def load_server_state(self, state: dict[str, Any]) -> None:
        self.b_bar = np.asarray(state["b_bar"], dtype=np.int64)
        self.priority = np.asarray(state["priority"], dtype=np.float64)
        self.has_stats = bool(state.get("has_stats", True))
