"""Float model <-> bit-plane model from one bit vector."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.models import build_model
from fedsim.models.slots import ActivationSlot, quantizable_layers
from fedsim.quant import (
    ActFakeQuant,
    QConv2d,
    QLinear,
    float_state_dict,
    get_bits,
    load_float_into_quantized,
    quantized_layers,
    set_act_quant,
    to_float,
    to_quantized,
)


def test_to_quantized_swaps_layers_and_slots(tiny: nn.Module) -> None:
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    q = to_quantized(tiny, [2, 3, 4, 5])
    assert type(q) is type(tiny) and q is not tiny
    assert isinstance(q.conv1, QConv2d) and isinstance(q.fc2, QLinear)
    assert isinstance(q.skip, nn.Conv2d) and not isinstance(q.skip, QConv2d)  # float-only
    assert [type(m) for m in (q.act1, q.act2, q.act3)] == [ActFakeQuant] * 3
    assert q.act1.bits == 4
    assert get_bits(q) == [2, 3, 4, 5]
    assert [n for n, _ in quantized_layers(q)] == [n for n, _ in quantizable_layers(tiny)]
    for k, v in tiny.state_dict().items():  # the input model is untouched
        assert torch.equal(v, before[k])
    assert isinstance(to_quantized(tiny, [8] * 4, act_bits=None).act1, ActivationSlot)
    assert to_quantized(tiny, [8] * 4, act_bits=3).act2.bits == 3


@pytest.mark.parametrize("bits", [[8] * 3, [8] * 5, [0, 8, 8, 8], [9, 8, 8, 8], "8888"])
def test_to_quantized_rejects_bad_vectors(tiny: nn.Module, bits: object) -> None:
    with pytest.raises(ValueError):
        to_quantized(tiny, bits)  # type: ignore[arg-type]


def test_float_entries_stay_float(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [32, 4, 32, 2])
    assert type(q.conv1) is nn.Conv2d and isinstance(q.conv2, QConv2d)
    assert get_bits(q) == [32, 4, 32, 2]
    assert torch.equal(q.conv1.weight, tiny.conv1.weight)
    with pytest.raises(ValueError):
        to_quantized(q, [8] * 4)


def test_to_float_keys_and_exact_weights(tiny: nn.Module, tiny_input: torch.Tensor) -> None:
    q = to_quantized(tiny, [3, 5, 2, 7]).eval()
    f = to_float(q).eval()
    assert type(f) is type(tiny)
    assert list(f.state_dict()) == list(tiny.state_dict())
    assert isinstance(f.act1, ActivationSlot) and type(f.conv1) is nn.Conv2d
    assert f.skip.fedsim_float  # float-only flag survives
    set_act_quant(q, False)
    with torch.no_grad():
        assert torch.equal(f(tiny_input), q(tiny_input))  # bit-identical weights
    fsd = float_state_dict(q)  # the upload: computed in the code's order, equal to ~1 ulp
    assert list(fsd) == list(tiny.state_dict())
    for k, v in f.state_dict().items():
        torch.testing.assert_close(fsd[k], v, rtol=1e-6, atol=1e-7)


def test_eight_bits_reproduce_float_resnet20() -> None:
    torch.manual_seed(0)
    model = build_model("resnet20", in_channels=3, num_classes=10, image_size=32).eval()
    q = to_quantized(model, [8] * len(quantizable_layers(model)), act_bits=None).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = model(x), q(x)
    # Each layer's weight error is at most half a step (max|W| / 510); through 20 layers
    # the logits move by a small fraction of their size (measured ~1 %).
    rel = (out - ref).abs().max() / ref.abs().max()
    assert rel < 0.03
    assert (out.argmax(1) == ref.argmax(1)).all()


def test_eight_bits_single_layer_within_quantization_error(tiny: nn.Module) -> None:
    lin = tiny.fc1
    q = to_quantized(tiny, [8] * 4).fc1
    x = torch.randn(3, lin.in_features)
    bound = x.abs().sum(1, keepdim=True) * q.scale.item() / 255 / 2
    with torch.no_grad():
        assert ((q(x) - lin(x)).abs() <= bound * (1 + 1e-4) + 1e-6).all()


def test_load_float_into_quantized_reuses_buffers(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [4, 4, 4, 4])
    torch.manual_seed(9)
    other = type(tiny)()
    state = other.state_dict()
    objs = [m.planes for _, m in quantized_layers(q)]
    ptrs = [p.data_ptr() for p in objs]
    bn_ptr = q.bn1.running_mean.data_ptr()
    load_float_into_quantized(q, state, [4, 6, 4, 2])
    assert get_bits(q) == [4, 6, 4, 2]
    assert [m.planes for _, m in quantized_layers(q)] == objs  # same Parameter objects
    assert objs[0].data_ptr() == ptrs[0] and objs[2].data_ptr() == ptrs[2]
    assert q.bn1.running_mean.data_ptr() == bn_ptr
    assert torch.equal(q.bn1.running_mean, other.bn1.running_mean)
    assert torch.equal(q.skip.weight, other.skip.weight)
    assert torch.equal(q.conv1.bias, other.conv1.bias)
    fresh = to_quantized(other, [4, 6, 4, 2])
    for (_, a), (_, b) in zip(quantized_layers(q), quantized_layers(fresh), strict=True):
        assert torch.equal(a.dequantized_weight(), b.dequantized_weight())


def test_load_float_into_quantized_swaps_float_entries(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [4, 4, 4, 4])
    state = tiny.state_dict()
    load_float_into_quantized(q, state, [32, 4, 4, 3])
    assert type(q.conv1) is nn.Conv2d and torch.equal(q.conv1.weight, tiny.conv1.weight)
    assert torch.equal(q.conv1.bias, tiny.conv1.bias)
    load_float_into_quantized(q, state, [5, 4, 4, 3])
    assert isinstance(q.conv1, QConv2d) and get_bits(q) == [5, 4, 4, 3]


def test_load_float_into_quantized_checks_keys(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [4, 4, 4, 4])
    state = dict(tiny.state_dict())
    before = q.conv1.planes.detach().clone()
    del state["bn1.running_var"]
    with pytest.raises(KeyError, match="running_var"):
        load_float_into_quantized(q, state, [2, 2, 2, 2])
    assert get_bits(q) == [4, 4, 4, 4] and torch.equal(q.conv1.planes, before)  # untouched
    state = dict(tiny.state_dict(), extra=torch.zeros(1))
    with pytest.raises(KeyError, match="extra"):
        load_float_into_quantized(q, state, [4, 4, 4, 4])
    state = dict(tiny.state_dict())
    state["fc2.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"fc2\.weight"):
        load_float_into_quantized(q, state, [4, 4, 4, 4])
