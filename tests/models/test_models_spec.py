"""model_spec: the layer table measured from a real module."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.models import ActivationSlot, build_model, mark_float, model_spec, quantizable_layers


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.act = ActivationSlot()
        self.pool = nn.MaxPool2d(2)
        self.skip = mark_float(nn.Conv2d(16, 8, 1, bias=False))
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.fc = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.relu(self.bn(self.conv(x)))))
        return self.fc(self.grouped(self.skip(x)).flatten(1))


def test_toy_table_by_hand() -> None:
    model = _Toy()
    spec = model_spec(model, name="toy", input_shape=(3, 32, 32))
    conv, skip, grouped, fc = spec.layers
    assert (conv.name, conv.kind, conv.params, conv.bias_params) == ("conv", "conv", 432, 16)
    assert conv.macs == 16 * 32 * 32 * 27 == 442368
    assert conv.act_elems == 16 * 32 * 32
    assert not skip.quantized and skip.macs == 8 * 16 * 16 * 16 and skip.params == 128
    assert grouped.macs == 8 * 16 * 16 * (2 * 3 * 3) and grouped.params == 8 * 2 * 9
    assert (fc.kind, fc.macs, fc.act_elems, fc.bias_params) == ("linear", 2048 * 10, 10, 10)
    # conv bias 16 + BN weight/bias 32 + running mean/var 32 + fc bias 10.
    assert spec.float_params == 16 + 32 + 32 + 10
    # BN and ReLU outputs at 32x32, pool output at 16x16; the slot counts nothing.
    assert spec.other_act_elems == 2 * 16 * 32 * 32 + 16 * 16 * 16
    assert spec.input_elems == 3 * 32 * 32
    assert spec.n_quantized == 3
    assert spec.total_params == sum(
        t.numel() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()
    )


def test_order_matches_quantizable_layers() -> None:
    for name, shape in (("resnet20", (3, 32, 32)), ("cnn", (1, 28, 28))):
        model = build_model(
            name,
            in_channels=shape[0],
            num_classes=10,
            image_size=shape[1],
            options={"shortcut": "B"} if name != "cnn" else None,
        )
        spec = model_spec(model, name=name, input_shape=shape)
        assert [layer.name for layer in spec.quantized_layers] == [
            n for n, _ in quantizable_layers(model)
        ]
        assert [layer.name for layer in spec.layers] == [
            n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
        ]


def test_restores_mode_and_leaves_state_alone() -> None:
    model = build_model("resnet20", in_channels=1, num_classes=10, image_size=8)
    model.train()
    model.layer2.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_spec(model, name="resnet20", input_shape=(1, 8, 8))
    assert model.training and not model.layer2.training and model.layer3.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks for m in model.modules())


def test_cnn_spec_on_digits() -> None:
    model = build_model("cnn", in_channels=1, num_classes=10, image_size=8)
    spec = model_spec(model, name="cnn", input_shape=(1, 8, 8))
    conv1, conv2, fc1, out = spec.layers
    assert conv1.macs == 16 * 8 * 8 * 9 and conv2.macs == 32 * 4 * 4 * 16 * 9
    assert fc1.params == 32 * 2 * 2 * 64 and out.params == 64 * 10
