"""Exact payload size of a model on the wire, from the bit vector alone.

One function shared by the network model, the quantization core and the records, so the
bits that set the planes are the bits that are charged (one source of truth).

Wire format of a bit-plane layer at ``b`` bits (1..8): ``b`` bits per weight (the planes),
one sign bit per weight, one float32 scale. A float layer (``b == 32``) sends 32 bits per
weight and no sign or scale. Float state (biases, BatchNorm) travels at 32 bits.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedsim.spec import FLOAT_BITS, ModelSpec

SCALE_BITS = 32
SIGN_BITS = 1


def layer_payload_bits(params: int, bits: int) -> int:
    """Bits on the wire for one layer's weight at ``bits`` bits."""
    if bits >= FLOAT_BITS:
        return params * FLOAT_BITS
    if not 1 <= bits <= 16:
        raise ValueError(f"bit-width must be 1..16 or 32, got {bits}")
    return params * (bits + SIGN_BITS) + SCALE_BITS


def model_payload_bits(spec: ModelSpec, bits: Sequence[int]) -> int:
    """Bits on the wire for a whole model whose quantized layers are at ``bits``.

    Non-quantized layers (e.g. 1x1 shortcut convs) and the float state go at 32 bits.
    """
    full = spec.expand_bits(bits)
    pairs = zip(spec.layers, full, strict=True)
    total = sum(layer_payload_bits(layer.params, b) for layer, b in pairs)
    return total + spec.float_params * FLOAT_BITS
