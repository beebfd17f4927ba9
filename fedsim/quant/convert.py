"""Float model <-> bit-plane model, driven by one per-layer bit vector.

The bit vector (one entry per quantized layer, :mod:`fedsim.spec`) is the single source of
truth: :func:`to_quantized` and :func:`load_float_into_quantized` set the planes from it,
:func:`get_bits` reads it back from the plane shapes, and the payload
(:func:`~fedsim.quant.payload_spec.quantized_payload_bits`) and the cost model take the same vector.

Bit-vector layers of a model, in ``named_modules()`` order: every :class:`BitPlaneLayer` and
every ``nn.Conv2d``/``nn.Linear`` not marked float-only (:func:`fedsim.models.slots.
mark_float`). On a float model this is exactly :func:`~fedsim.models.slots.quantizable_layers`;
conversion swaps modules in place, so names and order never change. An entry of 32 keeps that
layer float (sent at 32 bits); 1..8 gives it bit planes.

Conversions copy with ``copy.deepcopy`` and a pre-filled memo that maps each replaced module to
its replacement, so the rest of the model (BatchNorm, float layers, the model class and its
``forward``) is copied untouched and the replaced weights are never copied twice.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from fedsim.models.slots import ActivationSlot, is_float_only
from fedsim.quant.layers import (
    DEFAULT_ACT_CLIP,
    ActFakeQuant,
    BitPlaneLayer,
    quantized_class_for,
)
from fedsim.quant.representation import FLOAT_BITS, check_bits

#: Suffixes of a bit-plane layer's own state (replaced by ``.weight`` in a float state).
_PLANE_KEYS = ("planes", "scale", "sign")
#: Suffixes of a bias held as bit planes (replaced by ``.bias`` in a float state).
_BIAS_KEYS = ("bias_planes", "bias_scale", "bias_sign")


def bit_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every bit-vector layer (bit-plane or still float), in order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, BitPlaneLayer)
        or (isinstance(m, nn.Conv2d | nn.Linear) and not is_float_only(m))
    ]


def quantized_layers(model: nn.Module) -> list[tuple[str, BitPlaneLayer]]:
    """(name, layer) of every bit-plane layer, in bit-vector order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BitPlaneLayer)]


def get_bits(qmodel: nn.Module) -> list[int]:
    """The model's bit vector: planes per bit-vector layer (32 for a layer kept float)."""
    return [m.bits if isinstance(m, BitPlaneLayer) else FLOAT_BITS for _, m in bit_layers(qmodel)]


def _check_vector(layers: Sequence[tuple[str, nn.Module]], bits: Sequence[int]) -> list[int]:
    if isinstance(bits, str | bytes) or not isinstance(bits, Sequence):
        raise ValueError(f"bit vector must be a sequence of integers, got {bits!r}")
    if len(bits) != len(layers):
        raise ValueError(
            f"bit vector has {len(bits)} entries, the model has {len(layers)} quantized layers"
        )
    return [check_bits(b, allow_float=True) for b in bits]


def to_quantized(
    model: nn.Module,
    bits: Sequence[int],
    *,
    act_bits: int | None = 4,
    act_clip: float | None = DEFAULT_ACT_CLIP,
    bias_planes: bool = False,
) -> nn.Module:
    """A new model (deep copy) whose quantized layers hold bit planes at ``bits``.

    Each ``ActivationSlot`` becomes ``ActFakeQuant(act_bits, clip=act_clip)``; with
    ``act_bits=None`` the slots stay identities. With ``bias_planes`` the biases of the
    quantized layers get bit planes too, at the layer's bits (the reference code's FC bias).
    ``model`` is not modified.

    Raises:
        ValueError: wrong length or invalid entries of ``bits``; ``model`` already quantized.
    """
    if quantized_layers(model):
        raise ValueError("model already has bit-plane layers; use load_float_into_quantized")
    layers = bit_layers(model)
    vector = _check_vector(layers, bits)
    memo: dict[int, object] = {}
    for (_, m), b in zip(layers, vector, strict=True):
        if b != FLOAT_BITS:
            q = quantized_class_for(m).from_float(m, b)  # type: ignore[arg-type]
            if bias_planes:
                q.quantize_bias_()
            memo[id(m)] = q
    if act_bits is not None:
        for m in model.modules():
            if isinstance(m, ActivationSlot):
                memo[id(m)] = ActFakeQuant(act_bits, clip=act_clip)
    return copy.deepcopy(model, memo)


def to_float(qmodel: nn.Module) -> nn.Module:
    """A new float model with the original architecture and de-quantized weights.

    Bit-plane layers become ``nn.Conv2d``/``nn.Linear`` holding exactly the weights the
    quantized forward pass uses; activation quantizers become ``ActivationSlot`` again, so the
    ``state_dict`` keys are those of the float model the quantized one was made from.
    """
    memo: dict[int, object] = {}
    for m in qmodel.modules():
        if isinstance(m, BitPlaneLayer):
            memo[id(m)] = m.to_float()  # type: ignore[attr-defined]
        elif isinstance(m, ActFakeQuant):
            memo[id(m)] = ActivationSlot()
    return copy.deepcopy(qmodel, memo)


@torch.no_grad()
def float_state_dict(qmodel: nn.Module) -> dict[str, Tensor]:
    """The float model's ``state_dict`` of ``qmodel`` without building a module (new tensors).

    Same keys, in the same order, as ``to_float(qmodel).state_dict()``: each bit-plane layer
    contributes ``<name>.weight`` and its bias as a client uploads them (the code's
    ``to_float``: :meth:`~fedsim.quant.layers.BitPlaneLayer.uploaded_weight`, equal to the
    forward pass's weight on clean planes); everything else is copied.
    """
    qlayers = dict(quantized_layers(qmodel))
    out: dict[str, Tensor] = {}
    for key, value in qmodel.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in qlayers and leaf in _PLANE_KEYS:
            if leaf == "planes":
                out[f"{prefix}.weight"] = qlayers[prefix].uploaded_weight()
            continue
        if prefix in qlayers and leaf in _BIAS_KEYS:
            if leaf == "bias_planes":
                out[f"{prefix}.bias"] = qlayers[prefix].uploaded_bias()  # type: ignore[assignment]
            continue
        out[key] = value.detach().clone()
    return out


def _replace_module(root: nn.Module, name: str, new: nn.Module) -> None:
    if not name:
        raise ValueError("cannot swap the root module itself between float and bit planes")
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


@torch.no_grad()
def load_float_into_quantized(
    qmodel: nn.Module, float_state: Mapping[str, Tensor], bits: Sequence[int]
) -> None:
    """Re-binarize ``qmodel`` in place from a float ``state_dict`` at (possibly new) ``bits``.

    The per-round downlink path: each bit-plane layer re-encodes ``<name>.weight`` at its new
    bit-width, reusing its plane/sign/scale storage when the bit-width is unchanged (the
    ``planes`` Parameter object is kept either way); every other entry (biases, BatchNorm,
    float layers) is copied into the existing tensor. An entry of 32 swaps that layer to a
    float module (and back when it later gets 1..8 bits); only then must an optimizer built
    on ``qmodel`` be rebuilt.

    Raises:
        ValueError: bad bit vector or a tensor of the wrong shape.
        KeyError: ``float_state`` lacks a key of the float model or has an unknown one.
    """
    layers = bit_layers(qmodel)
    vector = _check_vector(layers, bits)
    targets = qmodel.state_dict(keep_vars=True)
    expected = set(_float_keys(qmodel, targets))
    missing = sorted(expected - set(float_state))
    unexpected = sorted(set(float_state) - expected)
    if missing or unexpected:
        raise KeyError(
            f"float state does not match the model: missing {missing}, unexpected {unexpected}"
        )
    weight_keys = {f"{name}.weight": m for name, m in layers}
    bias_keys = {f"{name}.bias": m for name, m in layers
                 if isinstance(m, BitPlaneLayer) and m.bias_planes is not None}
    for key, value in float_state.items():
        m = weight_keys.get(key)
        if key in bias_keys:
            shape = (bias_keys[key].weight_shape[0],)
        else:
            shape = (
                (m.weight_shape if isinstance(m, BitPlaneLayer) else tuple(m.weight.shape))
                if m is not None
                else tuple(targets[key].shape)
            )
        if tuple(value.shape) != shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {shape}")

    swapped = False
    for (name, m), b in zip(layers, vector, strict=True):
        weight = float_state[f"{name}.weight"]
        if isinstance(m, BitPlaneLayer):
            if b == FLOAT_BITS:
                fm = m.to_float()  # type: ignore[attr-defined]
                fm.weight.copy_(weight)
                _replace_module(qmodel, name, fm)
                swapped = True
            else:
                m.load_float_weight_(weight, b)
                if m.bias_planes is not None:  # the code re-encodes its bias at the layer's bits
                    m.load_float_bias_(float_state[f"{name}.bias"], b)
        else:
            m.weight.copy_(weight)
            if b != FLOAT_BITS:
                _replace_module(qmodel, name, quantized_class_for(m).from_float(m, b))
                swapped = True
    if swapped:  # biases of swapped layers now live in new modules
        targets = qmodel.state_dict(keep_vars=True)
    for key, value in float_state.items():
        if key not in weight_keys and (key not in bias_keys or key in targets):
            targets[key].copy_(value)


def _float_keys(qmodel: nn.Module, state: Mapping[str, Tensor]) -> list[str]:
    """Keys of the float model's ``state_dict`` that ``qmodel`` corresponds to."""
    qlayers = {name for name, _ in quantized_layers(qmodel)}
    keys = []
    for key in state:
        prefix, _, leaf = key.rpartition(".")
        if prefix in qlayers and leaf in _PLANE_KEYS:
            if leaf == "planes":
                keys.append(f"{prefix}.weight")
            continue
        if prefix in qlayers and leaf in _BIAS_KEYS:
            if leaf == "bias_planes":
                keys.append(f"{prefix}.bias")
            continue
        keys.append(key)
    return keys


def with_activation_quant(
    model: nn.Module, act_bits: int, *, act_clip: float | None = DEFAULT_ACT_CLIP
) -> nn.Module:
    """A copy of a float model whose activation slots fake-quantize at ``act_bits`` (the
    weights stay float): how the reference code evaluates its global model (16 bits behind
    the clients' ReLU6 clip)."""
    memo: dict[int, object] = {
        id(m): ActFakeQuant(act_bits, clip=act_clip)
        for m in model.modules()
        if isinstance(m, ActivationSlot)
    }
    return copy.deepcopy(model, memo)


def set_act_quant(qmodel: nn.Module, enabled: bool) -> None:
    """Switch every activation fake-quantizer of ``qmodel`` on or off."""
    for m in qmodel.modules():
        if isinstance(m, ActFakeQuant):
            m.enabled = enabled
