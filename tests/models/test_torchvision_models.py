"""torchvision models by name: the layer table gains depthwise groups and element-wise work."""

from __future__ import annotations

import pytest
import torch

from fedsim.errors import InputError
from fedsim.models import build_model, model_spec, quantizable_layers, validate_model_options


def test_mobilenet_v2_layer_table_has_depthwise_and_elementwise() -> None:
    m = build_model("torchvision.mobilenet_v2", in_channels=1, num_classes=10, image_size=32)
    spec = model_spec(m, name="mv2", input_shape=(1, 32, 32))
    assert m.features[0][0].in_channels == 1  # the stem takes the dataset's channels
    assert sum(layer.depthwise for layer in spec.layers) == 17
    kinds = [e.kind for e in spec.elementwise]
    assert kinds.count("norm") == 52 and kinds.count("activation") == 35
    assert kinds.count("binary") == 10  # the inverted-residual adds, functional in torchvision
    for layer in spec.layers:  # input and output sizes are measured per sample
        assert layer.in_elems > 0 and layer.act_elems > 0
    dw = next(layer for layer in spec.layers if layer.depthwise)
    assert dw.op_class == "depthwise_conv" and dw.groups > 1


def test_resnet18_downsample_convs_stay_float_and_adds_are_counted() -> None:
    m = build_model("torchvision.resnet18", in_channels=3, num_classes=10, image_size=32)
    spec = model_spec(m, name="r18", input_shape=(3, 32, 32))
    floats = [layer.name for layer in spec.layers if not layer.quantized]
    assert floats and all(n.endswith("downsample.0") for n in floats)
    assert len(quantizable_layers(m)) == spec.n_quantized
    assert sum(e.kind == "binary" for e in spec.elementwise) == 8  # out += identity


def test_spec_leaves_the_model_untouched() -> None:
    m = build_model("torchvision.mobilenet_v3_small", in_channels=3, num_classes=10,
                    image_size=32)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    model_spec(m, name="mv3", input_shape=(3, 32, 32))
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize(
    ("name", "options", "key", "needle"),
    [
        ("torchvision.resnet19", None, "model.name", "did you mean"),
        ("torchvision.resnet18", {"weights": "DEFAULT"}, "model.options.weights", "never"),
        ("torchvision.resnet18", {"num_blocks": 3}, "model.options", "does not accept"),
    ],
)
def test_bad_torchvision_names_and_options(name: str, options: dict | None, key: str,
                                           needle: str) -> None:
    with pytest.raises(InputError) as info:
        validate_model_options(name, options)
    assert info.value.key == key and needle in info.value.detail


def test_attention_models_are_refused_clearly() -> None:
    m = build_model("torchvision.vit_b_32", in_channels=3, num_classes=10, image_size=224)
    with pytest.raises(ValueError, match=r"not used by the forward pass|outside"):
        model_spec(m, name="vit", input_shape=(3, 224, 224))
