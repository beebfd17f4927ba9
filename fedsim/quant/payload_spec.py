"""Exact wire size of a bit-plane model, through :mod:`fedsim.payload` (one source of truth).

A bit-plane layer at ``b`` bits costs ``b`` bits per weight (planes), one sign bit per weight
and one 32-bit scale; a float layer and all float state (biases, BatchNorm affine and running
statistics) cost 32 bits per element. Uplink and downlink use the same format, so both are
``quantized_payload_bits`` of the model as it is sent (after precision reduction for the
uplink, after re-binarization at the downlink bits for the downlink). To price a bit vector
before any tensor exists, call ``fedsim.payload.model_payload_bits(spec, bits)`` directly.
"""

from __future__ import annotations

from torch import nn

from fedsim.models.slots import is_float_only
from fedsim.payload import model_payload_bits
from fedsim.quant.convert import get_bits
from fedsim.quant.layers import BitPlaneLayer
from fedsim.spec import LayerSpec, ModelSpec


def payload_spec(qmodel: nn.Module, *, name: str = "quantized") -> ModelSpec:
    """The payload-relevant part of a :class:`ModelSpec` read off a (bit-plane) model.

    Layers and parameter counts match ``fedsim.models.model_spec`` of the float model (the
    same modules in the same order; ``float_params`` counts floating parameters and buffers
    that are not conv/linear weights, so bit planes, signs, scales and place values are
    excluded). ``macs`` and ``act_elems`` are 0: use ``model_spec`` of the float model for
    the cost model.
    """
    layers: list[LayerSpec] = []
    excluded: set[int] = set()
    for lname, m in qmodel.named_modules():
        if isinstance(m, BitPlaneLayer):
            kind, params, quantized = m.kind, m.weight_numel, True
            excluded.update(id(t) for t in (m.planes, m.scale, m.sign, m.place))
        elif isinstance(m, nn.Conv2d | nn.Linear):
            kind = "conv" if isinstance(m, nn.Conv2d) else "linear"
            params, quantized = m.weight.numel(), not is_float_only(m)
            excluded.add(id(m.weight))
        else:
            continue
        bias = getattr(m, "bias", None)
        layers.append(
            LayerSpec(
                name=lname,
                kind=kind,
                params=int(params),
                bias_params=int(bias.numel()) if bias is not None else 0,
                macs=0,
                act_elems=0,
                quantized=quantized,
            )
        )
    float_params = sum(
        int(t.numel())
        for t in (*qmodel.parameters(), *qmodel.buffers())
        if t.is_floating_point() and id(t) not in excluded
    )
    return ModelSpec(name=name, layers=tuple(layers), float_params=float_params)


def quantized_payload_bits(qmodel: nn.Module, spec: ModelSpec | None = None) -> int:
    """Bits on the wire for ``qmodel`` as it stands: ``model_payload_bits(spec, get_bits)``.

    ``spec`` defaults to :func:`payload_spec` of ``qmodel``; pass the float model's
    ``model_spec`` to price against it (it must have the same bit-vector layers).
    """
    if spec is None:
        spec = payload_spec(qmodel)
    return model_payload_bits(spec, get_bits(qmodel))
