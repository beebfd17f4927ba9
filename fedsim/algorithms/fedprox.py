"""FedProx (Li et al., MLSys 2020): FedAvg plus a proximal term ``mu/2 ||w - w_global||^2``
that keeps non-IID local models near the global one. Float training and communication."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedsim.algorithms.base import (
    Algorithm,
    ClientTask,
    ClientUpdate,
    aggregation_weights,
    weighted_average,
)
from fedsim.algorithms.params import FedProxParams
from fedsim.algorithms.training import local_sgd
from fedsim.spec import FLOAT_BITS


class FedProx(Algorithm):
    name = "fedprox"
    params: FedProxParams

    def client_update(
        self, model: nn.Module, task: ClientTask, x: torch.Tensor, y: torch.Tensor
    ) -> ClientUpdate:
        model.load_state_dict(task.global_state)
        anchors = [p.detach().clone() for p in model.parameters()]
        params = list(model.parameters())
        mu = self.params.mu

        def proximal() -> torch.Tensor:
            pairs = zip(params, anchors, strict=True)
            return 0.5 * mu * sum(((p - a) ** 2).sum() for p, a in pairs)

        opt = torch.optim.SGD(params, lr=task.lr, momentum=self.hyper.momentum,
                              weight_decay=self.hyper.weight_decay)
        loss = local_sgd(model, x, y, optimizer=opt, batch_size=self.hyper.batch_size,
                         epochs=self.hyper.local_epochs,
                         generator=torch.Generator().manual_seed(task.seed),
                         regulariser=proximal if mu > 0 else None)
        return ClientUpdate(
            round=task.round, client_id=task.client_id,
            state={k: v.detach().clone() for k, v in model.state_dict().items()},
            bits_up=tuple([FLOAT_BITS] * self.spec.n_quantized),
            samples=int(x.shape[0]), train_loss=loss,
        )

    def aggregate(self, round: int, updates: Sequence[ClientUpdate]) -> None:
        weights = aggregation_weights(updates, self.params.aggregation)
        self.global_state = weighted_average([u.state for u in updates], weights)
