"""Fixtures for the hardware cost-model tests: a hand-made layer table (no torch) and
small hand-built profiles whose numbers make the equations easy to check by hand."""

from __future__ import annotations

from typing import Any

import pytest

from fedsim.hardware import DeviceProfile, LinkProfile, ProfileLibrary
from fedsim.spec import LayerSpec, ModelSpec


def make_spec() -> ModelSpec:
    """Three layers: a quantized conv, a float 1x1 shortcut, a quantized linear layer."""
    return ModelSpec(
        name="tiny",
        layers=(
            LayerSpec("conv1", "conv", params=432, bias_params=0, macs=110_592, act_elems=4096),
            LayerSpec(
                "short",
                "conv",
                params=64,
                bias_params=0,
                macs=16_384,
                act_elems=1024,
                quantized=False,
            ),
            LayerSpec("fc", "linear", params=160, bias_params=10, macs=160, act_elems=10),
        ),
        float_params=74,
        other_act_elems=2048,
        input_elems=768,
    )


def _one_layer_spec(macs: int = 1000, params: int = 100, act_elems: int = 10) -> ModelSpec:
    return ModelSpec(
        name="one",
        layers=(LayerSpec("l", "linear", params, 0, macs, act_elems),),
        float_params=0,
    )


LINK: dict[str, Any] = {
    "name": "testlink",
    "kind": "lte",
    "up_mbps": 6.0,
    "down_mbps": 12.0,
    "rtt_s": 0.05,
    "tx_w": 1.0,
    "rx_w": 0.5,
    "up_w_per_mbps": 0.5,
    "down_w_per_mbps": 0.1,
    "promotion_s": 0.25,
    "promotion_w": 1.2,
    "tail_s": 10.0,
    "tail_w": 1.0,
    "sources": [{"fields": ["up_mbps"], "cite": "test"}],
}


def device_dict(**compute: Any) -> dict[str, Any]:
    base_compute = {
        "mode": "float",
        "peak_gflops": 2.0,  # 1e9 MAC/s
        # every class at 0.5 -> 5e8 MAC/s effective for conv/linear, 1e9 flop/s element-wise
        "efficiency": {"dense_conv": 0.5, "depthwise_conv": 0.5, "linear": 0.5,
                       "elementwise": 0.5},
        "mem_bandwidth_gb_s": 1.0,  # 1e9 B/s
    }
    base_compute.update(compute)
    return {
        "name": "testdev",
        "class": "other",
        "compute": base_compute,
        "power": {"model": "measured", "active_w": 2.0, "idle_w": 0.5},
        "memory": {"ram_mb": 1.0, "usable_fraction": 0.5},
        "link": dict(LINK),
        "battery": {"capacity_wh": 1.0},
        "sources": [{"fields": ["compute"], "cite": "test", "estimate": True}],
    }


def _make_device(power: dict[str, Any] | None = None, **compute: Any) -> DeviceProfile:
    d = device_dict(**compute)
    if power is not None:
        d["power"] = power
    return DeviceProfile.model_validate(d)


def _make_link(**kw: Any) -> LinkProfile:
    d = dict(LINK)
    d.update(kw)
    return LinkProfile.model_validate(d)


@pytest.fixture(scope="session")
def lib() -> ProfileLibrary:
    return ProfileLibrary.load()


@pytest.fixture()
def spec() -> ModelSpec:
    return make_spec()


@pytest.fixture()
def make_device():
    """Factory: a device with 1e9 MAC/s peak x 0.5, 1 GB/s, 2 W active / 0.5 W idle, 1 MiB x 0.5."""
    return _make_device


@pytest.fixture()
def make_link():
    """Factory: an LTE-like link with easy numbers (see LINK)."""
    return _make_link


@pytest.fixture()
def one_layer_spec():
    """Factory: a one-layer model (default 1000 MACs, 100 params, 10 activations)."""
    return _one_layer_spec
