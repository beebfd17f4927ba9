"""Model zoo and the layer table (:class:`~fedsim.spec.ModelSpec`) computed from a model.

Why the spec is measured, never typed in: the bit vector, the payload and the cost model must
describe exactly the network that trains, so :func:`model_spec` runs one forward pass with
hooks and reads shapes, parameter counts and MACs off the real modules.

Names (:data:`MODEL_NAMES`) and their options (checked by :func:`validate_model_options`, so a
scenario can be rejected before anything is built):

* ``cnn`` — ``channels`` (list of conv widths, default ``[16, 32]``), ``hidden`` (list of FC
  widths, default ``[64]``, may be empty), ``batchnorm`` (bool, default true).
* ``resnet20`` / ``resnet32`` / ``resnet44`` / ``resnet56`` — ``shortcut``: ``"A"`` (default,
  parameter-free) or ``"B"`` (float 1x1 conv + BatchNorm).
* ``torchvision.<builder>`` — any torchvision classification model; ``options`` are the
  builder's keyword arguments (:mod:`fedsim.models.tvzoo`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fedsim.errors import InputError
from fedsim.models.cnn import DEFAULT_CHANNELS, DEFAULT_HIDDEN, SmallCNN
from fedsim.models.measure import model_spec
from fedsim.models.resnet import RESNET_DEPTHS, BasicBlock, CifarResNet, PadShortcut
from fedsim.models.slots import (
    ActivationSlot,
    is_float_only,
    mark_float,
    quantizable_layers,
)
from fedsim.models.tvzoo import (
    build_torchvision,
    is_torchvision_name,
    validate_torchvision_options,
)

MODEL_NAMES: tuple[str, ...] = ("cnn", "resnet20", "resnet32", "resnet44", "resnet56")

_MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "cnn": ("channels", "hidden", "batchnorm"),
    **{name: ("shortcut",) for name in RESNET_DEPTHS},
}

def reinitialise_(model: nn.Module, seed: int) -> nn.Module:
    """Draw a fresh initialisation of ``model`` in place from ``seed`` (the global torch RNG
    is left as it was).

    Every submodule's ``reset_parameters`` (PyTorch's defaults, BatchNorm statistics too),
    then the model's own ``init_weights_`` if it has one: the same recipe the constructor
    follows, so a client can draw its own start (``init: per_client``) without rebuilding.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
        init = getattr(model, "init_weights_", None)
        if callable(init):
            init()
    return model


def _width_list(value: Any, key: str, *, allow_empty: bool) -> list[int]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise InputError(f"must be a list of positive integers, got {value!r}", key=f"model.{key}")
    if not value and not allow_empty:
        raise InputError("must name at least one width", key=f"model.{key}")
    return [int(v) for v in value]


def _normalised_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``options`` for a zoo model ``name`` and return them with defaults filled in."""
    if name not in MODEL_NAMES:
        raise InputError(
            f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}", key="model.name"
        )
    opts = dict(options or {})
    allowed = _MODEL_OPTIONS[name]
    for key in opts:
        if key not in allowed:
            raise InputError(
                f"unknown option for model {name!r}; allowed: {', '.join(allowed)}",
                key=f"model.{key}",
            )
    if name == "cnn":
        batchnorm = opts.get("batchnorm", True)
        if not isinstance(batchnorm, bool):
            raise InputError(f"must be true or false, got {batchnorm!r}", key="model.batchnorm")
        return {
            "channels": _width_list(
                opts.get("channels", list(DEFAULT_CHANNELS)), "channels", allow_empty=False
            ),
            "hidden": _width_list(
                opts.get("hidden", list(DEFAULT_HIDDEN)), "hidden", allow_empty=True
            ),
            "batchnorm": batchnorm,
        }
    shortcut = opts.get("shortcut", "A")
    if not isinstance(shortcut, str) or shortcut.upper() not in ("A", "B"):
        raise InputError(f"must be 'A' or 'B', got {shortcut!r}", key="model.shortcut")
    return {"shortcut": shortcut.upper()}


def validate_model_options(name: str, options: Mapping[str, Any] | None) -> None:
    """Raise :class:`InputError` (key ``model.<opt>``) for an unknown model or bad options.

    Zoo models need no torch work; a torchvision model is built on the meta device (no
    memory, no weights), so a scenario can be checked before anything real is built.
    """
    if is_torchvision_name(name):
        validate_torchvision_options(name, options)
        return
    _normalised_options(name, options)


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build a float model of the zoo (activation slots in place, shortcut convs marked float)
    or of torchvision (``torchvision.<builder>``, its stem adapted to ``in_channels``).

    Raises:
        InputError: unknown name or bad options.
        ValueError: non-positive ``in_channels`` / ``num_classes`` / ``image_size``.
    """
    if is_torchvision_name(name):
        return build_torchvision(name, in_channels=in_channels, num_classes=num_classes,
                                 options=options)
    opts = _normalised_options(name, options)
    for arg, value in (
        ("in_channels", in_channels),
        ("num_classes", num_classes),
        ("image_size", image_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if name == "cnn":
        return SmallCNN(
            in_channels=in_channels, num_classes=num_classes, image_size=image_size, **opts
        )
    return CifarResNet(
        depth=RESNET_DEPTHS[name],
        in_channels=in_channels,
        num_classes=num_classes,
        shortcut=opts["shortcut"],
    )


__all__ = [
    "MODEL_NAMES",
    "ActivationSlot",
    "BasicBlock",
    "CifarResNet",
    "PadShortcut",
    "SmallCNN",
    "build_model",
    "is_float_only",
    "mark_float",
    "model_spec",
    "quantizable_layers",
    "reinitialise_",
    "validate_model_options",
]
