"""A small configurable CNN for quick runs (digits, Fashion-MNIST, small CIFAR tests).

Why it exists next to the ResNets: an 8x8 digits run or a CI smoke test needs a model that
trains in seconds on a CPU, yet still has several conv and linear layers so per-layer bit
vectors, payloads and the cost model are exercised as for a real network.

Layout: for each width in ``channels``: 3x3 conv (padding 1) - BatchNorm (optional) - ReLU
- [ActivationSlot, except after the first conv: the stem is never activation-quantized] -
2x2 max-pool while the spatial size is >= 4; then flatten, ``hidden`` FC - ReLU -
ActivationSlot layers, and a final FC.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from fedsim.models.slots import ActivationSlot

DEFAULT_CHANNELS: tuple[int, ...] = (16, 32)
DEFAULT_HIDDEN: tuple[int, ...] = (64,)


class SmallCNN(nn.Module):
    """Conv stack + MLP head; see the module docstring for the layout."""

    #: forward applies the children in order (batched training relies on it:
    #: fedsim.execution.stacked)
    sequential_forward = True

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        feats: OrderedDict[str, nn.Module] = OrderedDict()
        size, prev = image_size, in_channels
        for i, width in enumerate(channels, start=1):
            # A conv followed by BatchNorm needs no bias (BN's shift replaces it).
            feats[f"conv{i}"] = nn.Conv2d(prev, width, 3, padding=1, bias=not batchnorm)
            if batchnorm:
                feats[f"bn{i}"] = nn.BatchNorm2d(width)
            feats[f"relu{i}"] = nn.ReLU()
            if i > 1:
                feats[f"act{i}"] = ActivationSlot()
            if size >= 4:
                feats[f"pool{i}"] = nn.MaxPool2d(2)
                size //= 2
            prev = width
        self.features = nn.Sequential(feats)
        head: OrderedDict[str, nn.Module] = OrderedDict()
        head["flatten"] = nn.Flatten()
        prev = prev * size * size
        for i, width in enumerate(hidden, start=1):
            head[f"fc{i}"] = nn.Linear(prev, width)
            head[f"relu{i}"] = nn.ReLU()
            head[f"act{i}"] = ActivationSlot()
            prev = width
        head["out"] = nn.Linear(prev, num_classes)
        self.classifier = nn.Sequential(head)
        self.init_weights_()

    def init_weights_(self) -> None:
        """The model's own initialisation on top of PyTorch's defaults (draws from the global
        torch RNG; :func:`fedsim.models.reinitialise_` seeds it)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # Same conv init as the ResNets (and the reference code's bit convs).
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
