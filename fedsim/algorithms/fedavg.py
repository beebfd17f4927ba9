"""FedAvg (McMahan et al. 2017) with float (FP32) local training.

The baseline every quantized method is measured against (docs/algorithm.md section 9): SGD with
momentum 0.9 and weight decay 5e-4, models averaged with sample-count weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from fedsim.algorithms.base import (
    Algorithm,
    ClientTask,
    ClientUpdate,
    aggregation_weights,
    average,
)
from fedsim.algorithms.params import FedAvgParams
from fedsim.algorithms.training import copy_state, load_state, local_sgd
from fedsim.spec import FLOAT_BITS


class FedAvg(Algorithm):
    name = "fedavg"
    params: FedAvgParams

    def client_update(
        self, model: nn.Module, task: ClientTask, x: torch.Tensor, y: torch.Tensor
    ) -> ClientUpdate:
        load_state(model, task.global_state)
        regulariser = self.regulariser(model)
        opt = torch.optim.SGD(
            model.parameters(),
            lr=task.lr,
            momentum=self.hyper.momentum,
            weight_decay=self.hyper.weight_decay,
        )
        gen = torch.Generator().manual_seed(task.seed)
        loss = local_sgd(
            model, x, y, optimizer=opt, batch_size=self.hyper.batch_size,
            epochs=self.hyper.local_epochs, generator=gen, regulariser=regulariser,
        )
        state = copy_state(model)
        return ClientUpdate(
            round=task.round,
            client_id=task.client_id,
            state=state,
            bits_up=tuple([FLOAT_BITS] * self.spec.n_quantized),
            samples=int(x.shape[0]),
            train_loss=loss,
        )

    def regulariser(self, model: nn.Module) -> Callable[[], torch.Tensor] | None:
        """Extra local loss term, built after the global model is loaded (none for FedAvg)."""
        return None

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        weights = aggregation_weights(updates, self.params.aggregation)
        self.global_state = average([u.state for u in updates], weights,
                                    self.params.aggregation)
