"""FedMPQ and its bit-plane baselines (AQFL, FPQ8): one client loop, three server policies.

Client side (FEDMPQ.md sections 2-5): start from the global float model binarized at the
client's bit vector; train bit planes with the group-Lasso term and power-of-two steps;
(FedMPQ only) reduce precision; upload the de-quantized model at the reduced bits.

Server side differs by method:
* ``fedmpq``: average, bit statistics and layer priorities, pruning-growing per client within
  its budget (never above), binarize the downlink at that bit vector (sections 6-7);
* ``aqfl``: each client trains at ``floor(B_n)`` bits in every layer, no reduction;
* ``fpq8``: every client at 8 bits in every layer (an upper reference that ignores budgets).
"""

from __future__ import annotations

import math
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
    weighted_average,
)
from fedsim.algorithms.bitalloc import (
    MAX_BITS,
    bit_statistics,
    client_weights,
    layer_priority,
    prune_grow,
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
        if self._qmodel is None:
            # One quantized model per worker, re-binarized in place every task.
            model.load_state_dict(task.global_state)
            self._qmodel = to_quantized(model, list(task.bits), act_bits=p.act_bits)
        qmodel = self._qmodel
        load_float_into_quantized(qmodel, task.global_state, list(task.bits))
        gen = torch.Generator().manual_seed(task.seed)
        opt = BitPlaneSGD(qmodel, lr=task.lr, momentum=self.hyper.momentum,
                          float_lr=p.float_lr if p.float_lr is not None else None,
                          weight_decay=0.0, rounding=p.rounding, generator=gen)
        lam = p.lam
        loss = local_sgd(
            qmodel, x, y, optimizer=opt, batch_size=self.hyper.batch_size,
            epochs=self.hyper.local_epochs, generator=gen,
            regulariser=(lambda: group_lasso(qmodel, lam)) if lam > 0 else None,
        )
        bits_before = list(task.bits)
        if self.reduce:
            new_bits, reductions = reduce_precision(qmodel, p.epsilon)
        else:
            new_bits, reductions = bits_before, [0] * len(bits_before)
        state = {k: v.detach().clone() for k, v in float_state_dict(qmodel).items()}
        return ClientUpdate(
            round=task.round, client_id=task.client_id, state=state,
            bits_up=tuple(int(b) for b in new_bits), samples=int(x.shape[0]),
            train_loss=loss,
            client_state={"reductions": torch.tensor(reductions, dtype=torch.int64)},
        )

    # -- server side -----------------------------------------------------------------------
    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        weights = aggregation_weights(updates, self.params.aggregation)
        self.global_state = weighted_average([u.state for u in updates], weights)


def _uniform_bits(budget: float, n: int) -> tuple[int, ...]:
    b = int(min(MAX_BITS, max(1, math.floor(budget + 1e-9))))
    return tuple([b] * n)


class AQFL(BitPlaneMethod):
    """AQFL (Abdelmoniem & Canini 2021): uniform precision per client at its budget."""

    name = "aqfl"

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        n = self.spec.n_quantized
        return {cid: _uniform_bits(self.clients[cid].budget_bits, n) for cid in client_ids}


class FPQ8(BitPlaneMethod):
    """Fixed 8-bit precision for every client in every layer (budgets ignored)."""

    name = "fpq8"

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return {cid: tuple([MAX_BITS] * self.spec.n_quantized) for cid in client_ids}


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

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return {
            cid: tuple(prune_grow(self.b_bar, self.priority, self.layer_w,
                                  self.clients[cid].budget_bits))
            for cid in client_ids
        }

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

    def server_state(self) -> dict[str, Any]:
        return {"b_bar": [int(b) for b in self.b_bar],
                "priority": [float(p) for p in self.priority]}

    def load_server_state(self, state: dict[str, Any]) -> None:
        self.b_bar = np.asarray(state["b_bar"], dtype=np.int64)
        self.priority = np.asarray(state["priority"], dtype=np.float64)
