"""Payload accounting agrees with fedsim.payload (one source of truth)."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.models import build_model, model_spec
from fedsim.payload import model_payload_bits
from fedsim.quant import (
    BitPlaneSGD,
    get_bits,
    payload_spec,
    quantized_payload_bits,
    reduce_precision,
    to_quantized,
)


def test_hand_count_small_layer() -> None:
    model = nn.Sequential(nn.Linear(3, 2))  # weight 6, bias 2
    q = to_quantized(model, [3])
    # planes 6 * 3 + signs 6 * 1 + scale 32 + bias 2 * 32
    assert quantized_payload_bits(q) == 18 + 6 + 32 + 64
    assert quantized_payload_bits(to_quantized(model, [32])) == 6 * 32 + 64


def test_hand_count_tiny_net(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [2, 3, 4, 5])
    conv1, conv2, fc1, fc2, skip = 3 * 8 * 9, 4 * 4 * 9, 64 * 16, 16 * 5, 8 * 8
    floats = 8 + 4 * 8 + 16 + 5  # conv1 bias, bn1 (w, b, mean, var), fc1 bias, fc2 bias
    expect = (conv1 * 3 + 32) + (conv2 * 4 + 32) + (fc1 * 5 + 32) + (fc2 * 6 + 32)
    expect += skip * 32 + floats * 32
    assert quantized_payload_bits(q) == expect


def test_agrees_with_model_spec_of_zoo_models() -> None:
    torch.manual_seed(0)
    for name, opts in (("resnet20", {"shortcut": "B"}), ("cnn", None)):
        model = build_model(name, in_channels=3, num_classes=10, image_size=16, options=opts)
        spec = model_spec(model, name=name, input_shape=(3, 16, 16))
        bits = [(i % 8) + 1 for i in range(spec.n_quantized)]
        q = to_quantized(model, bits)
        assert quantized_payload_bits(q) == model_payload_bits(spec, bits)
        assert quantized_payload_bits(q, spec) == model_payload_bits(spec, bits)
        ps = payload_spec(q)
        assert ps.float_params == spec.float_params
        assert [(la.name, la.params, la.quantized) for la in ps.layers] == [
            (la.name, la.params, la.quantized) for la in spec.layers
        ]


def test_uplink_after_reduction_uses_new_bits(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [8, 8, 8, 8])
    with torch.no_grad():
        q.fc1.planes[7].zero_()  # empty MSB plane -> dropped
    BitPlaneSGD(q, lr=0.25)  # building an optimizer changes nothing
    new_bits, _ = reduce_precision(q, epsilon=0.0)
    spec = model_spec(tiny, name="tiny", input_shape=(3, 8, 8))
    assert get_bits(q) == new_bits
    assert quantized_payload_bits(q) == model_payload_bits(spec, new_bits)
