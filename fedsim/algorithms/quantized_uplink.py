"""Shared machinery of the float-training, quantized-uplink baselines (FedPAQ, UVeQFed).

Clients train in float from the global model, then send the *difference* to the global
model with every quantized layer's weight compressed at ``floor(B_n)`` bits (clipped to 1..8);
float state (biases, BatchNorm) travels at 32 bits. The server adds the weighted mean of the
reconstructed differences to the global model. The downlink is the float global model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from fedsim.algorithms.base import (
    Algorithm,
    ClientTask,
    ClientUpdate,
    State,
    aggregation_weights,
    weighted_average,
)
from fedsim.algorithms.training import load_state, local_sgd, state_tensors

Compressor = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def uplink_bits(budget: float) -> int:
    return int(min(8, max(1, math.floor(budget + 1e-9))))


class QuantizedUplink(Algorithm):
    """Base for FedPAQ-style methods: subclasses set :attr:`compressor`."""

    compressor: Compressor
    update_is_delta = True
    budget_choices = (1, 2, 3, 4, 5, 6, 7, 8)

    def uplink_bits_at(self, budget: float) -> tuple[int, ...]:
        """Float training, but the update goes up at ``floor(budget)`` bits per layer."""
        return tuple([uplink_bits(budget)] * self.spec.n_quantized)

    def client_update(
        self, model: nn.Module, task: ClientTask, x: torch.Tensor, y: torch.Tensor
    ) -> ClientUpdate:
        load_state(model, task.global_state)
        opt = torch.optim.SGD(model.parameters(), lr=task.lr, momentum=self.hyper.momentum,
                              weight_decay=self.hyper.weight_decay)
        gen = torch.Generator().manual_seed(task.seed)
        loss = local_sgd(model, x, y, optimizer=opt, batch_size=self.hyper.batch_size,
                         epochs=self.hyper.local_epochs, generator=gen)
        b = self.uplink_bits_at(task.budget_bits)[0] if self.spec.n_quantized else 8
        qnames = {f"{lay.name}.weight" for lay in self.spec.quantized_layers}
        delta: State = {}
        for k, v in state_tensors(model).items():
            g = task.global_state[k]
            if not torch.is_floating_point(v):
                delta[k] = v.detach().clone()
                continue
            d = v.detach() - g
            delta[k] = type(self).compressor(d, b, gen) if k in qnames else d.clone()
        return ClientUpdate(
            round=task.round, client_id=task.client_id, state=delta,
            bits_up=self.uplink_bits_at(task.budget_bits), samples=int(x.shape[0]),
            train_loss=loss,
        )

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        weights = aggregation_weights(updates, self.params.aggregation)  # type: ignore[attr-defined]
        mean_delta = weighted_average([u.state for u in updates], weights)
        new: State = {}
        for k, g in self.global_state.items():
            if torch.is_floating_point(g):
                new[k] = g + mean_delta[k]
            else:
                new[k] = mean_delta[k]
        self.global_state = new
