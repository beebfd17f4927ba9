"""Model zoo and the layer table (:class:`~fedsim.spec.ModelSpec`) computed from a model.

Why the spec is measured, never typed in: the bit vector, the payload and the cost model must
describe exactly the network that trains, so :func:`model_spec` runs one forward pass with
hooks and reads shapes, parameter counts and MACs off the real modules.

Names (:data:`MODEL_NAMES`) and their options, both owned by the scenario schema
(:data:`fedsim.config.schema.MODEL_OPTIONS`): :func:`validate_model_options` and
:func:`build_model` check options with the very schemas a scenario is validated with, so a
bad option reads the same (key ``model.options.<key>``) from a scenario or a direct call:

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

from fedsim.config.schema import MODEL_NAMES, ModelConfig
from fedsim.errors import InputError
from fedsim.models.cnn import SmallCNN
from fedsim.models.measure import model_spec
from fedsim.models.resnet import RESNET_DEPTHS, CifarResNet
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
from fedsim.validation import validate_as


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


def _normalised_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a zoo model's name and options with the scenario schema; defaults filled in."""
    cfg = validate_as(ModelConfig, {"name": name, "options": dict(options or {})},
                      key_prefix="model")
    return validate_as(cfg.options_schema(), cfg.options, key_prefix="model.options").model_dump()


def validate_model_options(name: str, options: Mapping[str, Any] | None) -> None:
    """Raise :class:`~fedsim.errors.InputError` (key ``model.name`` or
    ``model.options.<key>``) for an unknown model or bad options.

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
    from fedsim.plugins import is_plugin

    if name not in MODEL_NAMES and is_plugin("model", name):
        return _build_plugin(name, in_channels=in_channels, num_classes=num_classes,
                             image_size=image_size, options=options)
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


def _build_plugin(name: str, *, in_channels: int, num_classes: int, image_size: int,
                  options: Mapping[str, Any] | None) -> nn.Module:
    """A user's model (``module:function`` or an installed ``fedsim.models`` entry point)."""
    from fedsim.plugins import PluginError, check_callable

    try:
        build = check_callable("model", name)
    except PluginError as exc:
        raise InputError(f"model plug-in {exc}", key="model.name") from None
    try:
        model = build(in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                      **dict(options or {}))
    except (TypeError, ValueError) as exc:
        raise InputError(f"model plug-in {name} refused its options: {exc}",
                         key="model.options") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"model plug-in {name} returned a {type(model).__name__}, not a "
                         "torch.nn.Module", key="model.name")
    if not quantizable_layers(model):
        raise InputError(f"model plug-in {name} has no nn.Conv2d or nn.Linear layer to "
                         "quantize", key="model.name")
    return model


__all__ = [
    "MODEL_NAMES",
    "ActivationSlot",
    "build_model",
    "is_float_only",
    "mark_float",
    "model_spec",
    "quantizable_layers",
    "reinitialise_",
    "validate_model_options",
]
