"""A model plug-in: ``build(*, in_channels, num_classes, image_size, **options)``."""

from __future__ import annotations

from torch import nn


def build_mlp(*, in_channels: int, num_classes: int, image_size: int,
              hidden: int = 64) -> nn.Module:
    """Flatten, one hidden layer, classifier: two nn.Linear layers fedsim quantizes."""
    if hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {hidden}")
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
