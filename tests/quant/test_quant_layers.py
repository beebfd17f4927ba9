"""Bit-plane Conv2d/Linear and the activation fake-quantizer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedsim.quant import ActFakeQuant, QConv2d, QLinear
from fedsim.quant.representation import integer_value, levels


def _conv() -> nn.Conv2d:
    torch.manual_seed(3)
    return nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True)


def test_conv_forward_uses_dequantized_weight() -> None:
    conv = _conv()
    q = QConv2d.from_float(conv, 5)
    x = torch.randn(2, 4, 9, 9)
    expect = F.conv2d(x, q.dequantized_weight(), conv.bias, 2, 1)
    assert torch.equal(q(x), expect)
    assert torch.equal(q.bias, conv.bias)  # bias stays float, copied as is
    assert "bits=5" in repr(q) and "levels=31" in repr(q)


def test_linear_8bit_error_bound() -> None:
    torch.manual_seed(4)
    lin = nn.Linear(20, 7)
    q = QLinear.from_float(lin, 8)
    x = torch.randn(5, 20)
    step = q.scale.item() / levels(8)
    bound = x.abs().sum(dim=1, keepdim=True) * step / 2
    assert ((q(x) - lin(x)).abs() <= bound * (1 + 1e-4) + 1e-6).all()
    assert "bits=8" in repr(q)


def test_ste_gradients_reach_every_plane_and_the_scale() -> None:
    q = QConv2d.from_float(_conv(), 3)
    x = torch.randn(2, 4, 9, 9)
    g_out = torch.randn_like(q(x))
    (q(x) * g_out).sum().backward()
    # Reference: W = s * sign * sum_i 2^i B_i / L as a plain differentiable expression.
    planes = q.planes.detach().clone().requires_grad_(True)
    scale = q.scale.detach().clone().requires_grad_(True)
    place = torch.tensor([1.0, 2.0, 4.0]).view(3, 1, 1, 1, 1)
    w = scale * q.sign * (planes * place).sum(0) / levels(3)
    (F.conv2d(x, w, q.bias.detach(), 2, 1) * g_out).sum().backward()
    torch.testing.assert_close(q.planes.grad, planes.grad)
    torch.testing.assert_close(q.scale.grad, scale.grad)
    assert q.planes.grad[2].abs().sum() > 0 and q.planes.grad[0].abs().sum() > 0


def test_ste_forward_rounds_and_clips_real_valued_planes() -> None:
    q = QLinear(3, 1, bias=False, bits=2)
    with torch.no_grad():
        q.planes.copy_(torch.tensor([[[0.4, 2.0, -0.6]], [[0.0, 1.0, 0.0]]]))
        q.scale.fill_(3.0)
    # q values 0.4 -> 0, 4 -> clipped to 3, -0.6 -> -1
    assert q.quantized_weight().tolist() == [[0.0, 3.0, -1.0]]


def test_padding_mode_and_groups() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=2, padding_mode="circular", bias=False)
    q = QConv2d.from_float(conv, 8)
    x = torch.randn(1, 4, 5, 5)
    ref = q.to_float()
    assert torch.equal(q(x), ref(x))
    assert ref.padding_mode == "circular" and ref.groups == 2


def test_state_dict_roundtrip_across_bit_widths() -> None:
    a = QConv2d.from_float(_conv(), 6)
    b = QConv2d.from_float(_conv(), 2)
    planes_obj = b.planes
    b.load_state_dict(a.state_dict())
    assert b.bits == 6 and b.planes is planes_obj
    assert torch.equal(b.dequantized_weight(), a.dequantized_weight())
    assert set(a.state_dict()) == {"planes", "scale", "sign", "bias"}


def test_load_float_weight_reuses_storage() -> None:
    q = QLinear.from_float(nn.Linear(8, 3), 4)
    ptr = q.planes.data_ptr()
    q.load_float_weight_(torch.randn(3, 8))
    assert q.planes.data_ptr() == ptr
    q.load_float_weight_(torch.randn(3, 8), bits=7)
    assert q.bits == 7 and q.place.tolist() == [2.0**i for i in range(7)]
    with pytest.raises(ValueError):
        q.load_float_weight_(torch.randn(8, 3))
    with pytest.raises(ValueError):
        q.load_float_weight_(torch.randn(3, 8), bits=9)


def test_act_fake_quant_levels_and_ste() -> None:
    aq = ActFakeQuant(4)
    x = (torch.randn(64, 8, generator=torch.Generator().manual_seed(0)) * 2).abs()
    x.requires_grad_(True)
    y = aq(x)
    assert y.unique().numel() <= 16
    a = min(x.max().item(), 6.0)
    assert y.max().item() == pytest.approx(a)
    assert ((y - x.detach().clamp(max=6.0)).abs() <= a / 15 / 2 + 1e-6).all()
    y.sum().backward()
    assert torch.equal(x.grad, (x.detach() <= 6.0).float())  # straight through inside the clip
    aq.enabled = False
    assert aq(x) is x
    assert "bits=4" in repr(aq)


def test_act_fake_quant_clip_gradient() -> None:
    x = torch.tensor([1.2, 4.1, 7.0, 9.0], requires_grad=True)
    y = ActFakeQuant(2, clip=6.0)(x)
    assert y.tolist() == [2.0, 4.0, 6.0, 6.0]  # a = 6, 3 levels: grid 0, 2, 4, 6
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]
    y2 = ActFakeQuant(2, clip=None)(torch.tensor([1.0, 9.0]))
    assert y2.tolist() == [0.0, 9.0]


@pytest.mark.parametrize("bits", [0, 17, 2.5])
def test_act_fake_quant_rejects_bits(bits: object) -> None:
    with pytest.raises(ValueError):
        ActFakeQuant(bits)  # type: ignore[arg-type]


def test_integer_value_matches_loop() -> None:
    planes = torch.randint(0, 2, (5, 3, 4)).float()
    loop = sum(planes[i] * 2**i for i in range(5))
    assert torch.equal(integer_value(planes), loop)
