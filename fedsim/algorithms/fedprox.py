"""FedProx (Li et al., MLSys 2020): FedAvg plus a proximal term ``mu/2 ||w - w_global||^2``
that keeps non-IID local models near the global one. Float training and communication."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.params import FedProxParams


class FedProx(FedAvg):
    name = "fedprox"
    params: FedProxParams

    def regulariser(self, model: nn.Module) -> Callable[[], torch.Tensor] | None:
        mu = self.params.mu
        if mu <= 0:
            return None
        params = list(model.parameters())
        anchors = [p.detach().clone() for p in params]  # the global model just loaded

        def proximal() -> torch.Tensor:
            pairs = zip(params, anchors, strict=True)
            return 0.5 * mu * sum(((p - a) ** 2).sum() for p, a in pairs)

        return proximal
