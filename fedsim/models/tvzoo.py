"""Any torchvision classification model by name: ``model: {name: torchvision.mobilenet_v2}``.

Why torchvision and not more hand-written models: researchers cost the networks they deploy
(MobileNetV2, ResNet-18, EfficientNet, ShuffleNet), and the cost model must see exactly the
network that trains. torchvision's builders give that network; fedsim measures its layer
table from the real module like any zoo model (:func:`fedsim.models.model_spec`).

Rules, each enforced here with an error naming the key:

* ``name`` is ``torchvision.<builder>``, where ``<builder>`` is one of
  ``torchvision.models.list_models(module=torchvision.models)`` (classification models only;
  detection, segmentation and video builders live in other modules).
* ``options`` go to the builder as keyword arguments (``width_mult: 0.5``,
  ``dropout: 0.0``); ``weights`` is refused (fedsim never downloads). ``num_classes`` is set
  from the dataset; an explicit one must agree with it.
* A dataset with other than 3 channels gets a stem convolution with that many input
  channels (same shape otherwise); nothing else about the network changes.
* Downsampling 1x1 convolutions of residual shortcuts (``*.downsample.0``) stay float under
  FedMPQ, as the CIFAR ResNets' shortcut convs do.

Activation quantization: torchvision models have no activation slots
(:class:`~fedsim.models.slots.ActivationSlot`), so FedMPQ-style methods quantize their weights
only and train with float activations.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from torch import nn

from fedsim.errors import InputError
from fedsim.models.slots import mark_float

PREFIX = "torchvision."


def is_torchvision_name(name: str) -> bool:
    return name.startswith(PREFIX)


@functools.cache
def torchvision_builders() -> tuple[str, ...]:
    """Names of torchvision's classification builders (imports torchvision once)."""
    import torchvision.models as tvm

    return tuple(tvm.list_models(module=tvm))


def check_builder(name: str, key: str = "model.name") -> str:
    """The builder part of ``torchvision.<builder>``; InputError naming ``key`` if unknown."""
    builder = name[len(PREFIX):]
    known = torchvision_builders()
    if builder not in known:
        import difflib

        near = difflib.get_close_matches(builder, known, n=3)
        hint = f"; did you mean {', '.join(PREFIX + n for n in near)}?" if near else ""
        raise InputError(
            f"unknown torchvision classification model {builder!r}{hint} (any of "
            f"torchvision.models.list_models(): {len(known)} models, e.g. "
            f"{PREFIX}resnet18, {PREFIX}mobilenet_v2)",
            key=key,
        )
    return builder


def _builder_options(options: Mapping[str, Any] | None, num_classes: int | None) -> dict[str, Any]:
    opts = dict(options or {})
    if "weights" in opts or "progress" in opts:
        bad = "weights" if "weights" in opts else "progress"
        raise InputError(
            "pretrained weights are not supported: fedsim never downloads (train from scratch)",
            key=f"model.options.{bad}",
        )
    if num_classes is not None:
        given = opts.get("num_classes", num_classes)
        if given != num_classes:
            raise InputError(
                f"is {given!r} but the dataset has {num_classes} classes",
                key="model.options.num_classes",
            )
        opts["num_classes"] = num_classes
    return opts


def build_torchvision(
    name: str, *, in_channels: int, num_classes: int | None, options: Mapping[str, Any] | None
) -> nn.Module:
    """Build ``torchvision.<builder>`` with ``options``, its stem adapted to ``in_channels``.

    Raises:
        InputError: unknown builder, a refused or unknown option, or one the builder rejects
            (the builder's own message, with the key ``model.options``).
    """
    import torchvision.models as tvm

    builder = check_builder(name)
    opts = _builder_options(options, num_classes)
    try:
        model = tvm.get_model(builder, weights=None, **opts)
    except TypeError as exc:  # an option the builder does not take
        raise InputError(f"{name} does not accept these options: {exc}",
                         key="model.options") from None
    except (ValueError, AssertionError) as exc:
        raise InputError(f"{name} rejected its options: {exc}", key="model.options") from None
    _adapt_stem(model, in_channels, name)
    for mname, m in model.named_modules():
        if mname.endswith("downsample.0") and isinstance(m, nn.Conv2d):
            mark_float(m)
    return model


def validate_torchvision_options(name: str, options: Mapping[str, Any] | None) -> None:
    """Check name and options by building the model on the meta device (no memory, fast)."""
    import torch

    with torch.device("meta"):
        build_torchvision(name, in_channels=3, num_classes=None, options=options)


def _adapt_stem(model: nn.Module, in_channels: int, name: str) -> None:
    """Swap the first convolution for one taking ``in_channels`` (grayscale data)."""
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None:
        path, conv = first
        if conv.in_channels == in_channels:
            return
        if conv.groups != 1:
            raise InputError(f"{name}: the stem convolution is grouped; cannot adapt it to "
                             f"{in_channels} input channels", key="model.name")
        parent_name, _, child_name = path.rpartition(".")
        parent = model.get_submodule(parent_name)
        new = nn.Conv2d(
            in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
            padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype,
        )
        setattr(parent, child_name, new)
        return
    raise InputError(f"{name} has no convolution to take the input", key="model.name")
