"""Physical bounds on profile figures: no accepted profile gives an infinite or NaN time or
energy (docs/hardware.md section 8), and out-of-range figures are refused with their key."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.errors import InputError
from fedsim.hardware import (
    DeviceProfile,
    LinkProfile,
    check_memory,
    train_cost,
    transfer_cost,
)
from fedsim.hardware.schema import (
    GBps,
    Gflops,
    Mbps,
    Seconds,
    Spread,
    Watts,
)
from fedsim.spec import LayerSpec, ModelSpec
from fedsim.validation import validate_as
from tests.hardware.conftest import LINK, device_dict


def _bounds(t: Any) -> tuple[float, float]:
    f = t.__metadata__[0]
    lo = next(m.ge if hasattr(m, "ge") else m.gt for m in f.metadata
              if hasattr(m, "ge") or hasattr(m, "gt"))
    hi = next(m.le for m in f.metadata if hasattr(m, "le"))
    return float(lo), float(hi)


def _edge(t: Any) -> st.SearchStrategy[float]:
    """The range's ends (where overflow lives) and values in between, log-spaced."""
    lo, hi = _bounds(t)
    inner = st.floats(min_value=max(lo, 1e-6), max_value=hi, allow_nan=False,
                      allow_infinity=False)
    return st.one_of(st.sampled_from([lo or 1e-12, hi]), inner).filter(lambda v: v >= lo)


# a big model: 10^12 MACs per sample and 10^9 weights per layer, trained for 10^6 steps
BIG = ModelSpec(
    name="big",
    layers=tuple(LayerSpec(f"l{i}", "conv", params=10**9, bias_params=0, macs=10**12,
                           act_elems=10**9) for i in range(3)),
    float_params=10**6, other_act_elems=10**9, input_elems=10**6)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(gflops=_edge(Gflops), bw=_edge(GBps), eff=st.sampled_from([1e-6, 1.0]),
       mode=st.sampled_from(["float", "int8", "bit_serial", "bit_flexible"]),
       active=_edge(Watts), mbps=_edge(Mbps), sigma=_edge(Spread), rtt=_edge(Seconds),
       bits=st.sampled_from([1, 2, 8, 32]))
def test_every_accepted_profile_gives_finite_costs(gflops: float, bw: float, eff: float,
                                                    mode: str, active: float, mbps: float,
                                                    sigma: float, rtt: float,
                                                    bits: int) -> None:
    compute: dict[str, Any] = {"mode": mode, "peak_gflops": gflops, "mem_bandwidth_gb_s": bw,
                               "efficiency": {k: eff for k in ("dense_conv", "depthwise_conv",
                                                               "linear", "elementwise")},
                               "op_overhead_us": 1e9}
    if mode == "int8":
        compute["int8_speedup"] = 1000.0
    d = device_dict(**compute)
    d["power"] = {"model": "measured", "active_w": max(active, 1e-9), "idle_w": 0.0}
    dev = DeviceProfile.model_validate(d)
    cost = train_cost(dev, BIG, (bits,) * 3, act_bits=None if bits == 32 else bits,
                      batch_size=10**4, steps=10**6)
    assert math.isfinite(cost.time_s) and math.isfinite(cost.energy_j)
    assert cost.time_s >= 0 and cost.energy_j >= 0
    problem = check_memory(dev, BIG, (bits,) * 3, batch_size=10**4,
                           act_bits=None if bits == 32 else bits)
    assert problem is not None and "GB" in problem  # 3e9 weights never fit 1 MB
    link = LinkProfile.model_validate({**LINK, "up_mbps": mbps, "down_mbps": mbps,
                                       "spread_sigma": sigma, "rtt_s": rtt,
                                       "promotion_s": 86_400.0, "tail_s": 86_400.0,
                                       "tail_w": 1e5, "duty_cycle": 1e-6})
    worst_factor = math.exp(-sigma * 8.6)  # the smallest factor a keyed normal can give
    for direction in ("up", "down"):
        t = transfer_cost(link, 3 * 10**9 * 32, direction=direction,  # type: ignore[arg-type]
                          bandwidth_factor=worst_factor)
        assert math.isfinite(t.time_s) and math.isfinite(t.energy_j)


@pytest.mark.parametrize(("where", "key", "value"), [
    ("compute", "peak_gflops", 5e-324),
    ("compute", "peak_gflops", 1e300),
    ("compute", "mem_bandwidth_gb_s", 1e-30),
    ("link", "up_mbps", 1e-12),
    ("link", "spread_sigma", 50.0),
    ("link", "duty_cycle", 1e-12),
    ("power", "active_w", 1e12),
])
def test_figures_out_of_physical_range_are_refused(where: str, key: str, value: float) -> None:
    d = device_dict()
    d[where] = {**d[where], key: value}
    with pytest.raises(InputError) as err:
        validate_as(DeviceProfile, d, file="dev.yaml")
    assert err.value.key == f"{where}.{key}"
    assert "expected a value" in err.value.detail
