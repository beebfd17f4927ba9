"""Marker modules that let the quantization core find its insertion points.

Float models place an :class:`ActivationSlot` wherever FedMPQ fake-quantizes activations
(inside each residual block after the first ReLU and after the residual ReLU; after hidden
ReLUs of the small CNN, never after the stem). In a float model it is the identity; the
quantized converter swaps each slot for an activation fake-quantizer and back. Keeping the
positions in the model definition, not in the converter, means a new architecture declares
its own quantization points.

Conv/linear layers that must stay float in every method (1x1 shortcut convs, docs/algorithm.md
section 1) carry ``fedsim_float = True`` as a module attribute (see :func:`mark_float`).
The quantized layers of a model are its ``nn.Conv2d``/``nn.Linear`` modules without that
flag, in ``named_modules()`` order: the order of every bit vector.
"""

from __future__ import annotations

from torch import nn


class ActivationSlot(nn.Identity):
    """Identity in float models; replaced by an activation fake-quantizer when quantized."""


def mark_float(module: nn.Module) -> nn.Module:
    """Flag a conv/linear layer as always-float (never given bit planes)."""
    module.fedsim_float = True  # type: ignore[attr-defined]
    return module


def is_float_only(module: nn.Module) -> bool:
    return bool(getattr(module, "fedsim_float", False))


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every quantized conv/linear layer, in bit-vector order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear) and not is_float_only(m)
    ]
