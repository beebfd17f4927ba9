"""Model zoo: shapes, layer counts, activation slots, shortcut options, option validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.errors import InputError
from fedsim.models import (
    MODEL_NAMES,
    ActivationSlot,
    build_model,
    is_float_only,
    model_spec,
    quantizable_layers,
    validate_model_options,
)


def _slots(model: nn.Module) -> int:
    return sum(isinstance(m, ActivationSlot) for m in model.modules())


# Every model on 3x32x32; the shallow ones also on 8x8 and 28x28 (depth does not change
# the shape handling, and the deep ones would only slow the suite down).
_SHAPE_CASES = [(name, (3, 32, 32)) for name in MODEL_NAMES] + [
    (name, shape) for name in ("cnn", "resnet20", "resnet32") for shape in ((1, 8, 8), (1, 28, 28))
]


@pytest.mark.parametrize(("name", "shape"), _SHAPE_CASES)
def test_forward_shapes(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, in_channels=shape[0], num_classes=7, image_size=shape[1])
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)


def test_resnet20_structure() -> None:
    model = build_model("resnet20", in_channels=3, num_classes=10, image_size=32)
    spec = model_spec(model, name="resnet20", input_shape=(3, 32, 32))
    convs = [layer for layer in spec.layers if layer.kind == "conv"]
    assert len(convs) == 19 and spec.layers[-1].kind == "linear"
    assert spec.n_quantized == 20 and all(layer.quantized for layer in spec.layers)
    assert _slots(model) == 18
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.26e6 < n_params < 0.28e6
    # ~41 M MACs per 32x32 image is the usual figure for ResNet-20.
    assert 40e6 < spec.macs_per_sample < 41e6


@pytest.mark.parametrize(("name", "blocks"), [("resnet32", 15), ("resnet44", 21), ("resnet56", 27)])
def test_deeper_resnets(name: str, blocks: int) -> None:
    model = build_model(name, in_channels=3, num_classes=10, image_size=32)
    assert len(quantizable_layers(model)) == 2 * blocks + 2
    assert _slots(model) == 2 * blocks


def test_resnet_shortcut_b_adds_float_convs() -> None:
    model = build_model(
        "resnet20", in_channels=3, num_classes=10, image_size=32, options={"shortcut": "B"}
    )
    spec = model_spec(model, name="resnet20", input_shape=(3, 32, 32))
    floats = [layer for layer in spec.layers if not layer.quantized]
    assert len(floats) == 2 and spec.n_quantized == 20
    assert all(layer.kind == "conv" and "shortcut" in layer.name for layer in floats)
    assert floats[0].params == 16 * 32 and floats[1].params == 32 * 64
    assert sum(is_float_only(m) for m in model.modules()) == 2
    assert spec.expand_bits([4] * 20).count(32) == 2


def test_resnet_init() -> None:
    torch.manual_seed(0)
    model = build_model("resnet56", in_channels=3, num_classes=10, image_size=32)
    w = model.layer3[0].conv2.weight  # 64 -> 64, 3x3: std sqrt(2 / (9 * 64))
    assert abs(float(w.detach().std()) - (2 / (9 * 64)) ** 0.5) < 0.005
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)


def test_cnn_layout_and_options() -> None:
    model = build_model("cnn", in_channels=1, num_classes=10, image_size=8)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    names = [n for n, _ in quantizable_layers(model)]
    assert len(names) == 4  # 2 convs, 1 hidden FC, output FC
    assert _slots(model) == 2  # after conv2's ReLU and the hidden FC's ReLU, not the stem
    first = list(model.features.children())
    assert not any(isinstance(m, ActivationSlot) for m in first[:4])
    wide = build_model(
        "cnn",
        in_channels=3,
        num_classes=5,
        image_size=32,
        options={"channels": [8, 8, 8], "hidden": [], "batchnorm": False},
    )
    assert wide(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in wide.modules())
    assert len(quantizable_layers(wide)) == 4 and _slots(wide) == 2


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        # the scenario's key paths (options sit under model.options), from its schemas
        ("cnn", {"channels": []}, "model.options.channels"),
        ("cnn", {"channels": [16, 0]}, "model.options.channels[1]"),
        ("cnn", {"channels": ["16"]}, "model.options.channels[0]"),
        ("cnn", {"hidden": "64"}, "model.options.hidden"),
        ("cnn", {"batchnorm": "yes"}, "model.options.batchnorm"),
        ("cnn", {"shortcut": "A"}, "model.options.shortcut"),
        ("resnet20", {"shortcut": "C"}, "model.options.shortcut"),
        ("resnet20", {"depth": 20}, "model.options.depth"),
        ("vgg", None, "model.name"),
    ],
)
def test_validate_model_options(name: str, options: dict | None, key: str) -> None:
    with pytest.raises(InputError) as info:
        validate_model_options(name, options)
    assert info.value.key == key
    with pytest.raises(InputError):
        build_model(name, in_channels=1, num_classes=2, image_size=8, options=options)


def test_validate_model_options_accepts_good() -> None:
    validate_model_options("cnn", {"channels": [4], "hidden": [], "batchnorm": True})
    validate_model_options("resnet32", {"shortcut": "b"})
    validate_model_options("resnet56", None)
