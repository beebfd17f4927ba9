"""Speed-up laws on hand-computed cases, and the compute roofline on a one-layer model."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.hardware import speedup, train_cost, train_cost_batch
from fedsim.hardware.laws import fusion_bits, relative_latency

TABLE = {
    "w_bits": [2, 8, 32],
    "a_bits": [4, 8, 32],
    "relative_latency": [[0.2, 0.4, 2.0], [0.5, 1.0, 3.0], [4.0, 4.0, 4.0]],
}


def s_of(profile, w, a):
    return float(speedup(profile.compute, np.array(w), np.array(a)))


def test_float_law_gives_no_bit_speedup(make_device):
    p = make_device()
    for w, a in [(1, 1), (2, 4), (8, 8), (32, 32), (4, 32)]:
        assert s_of(p, w, a) == 1.0


def test_int8_law(make_device):
    p = make_device(mode="int8", int8_speedup=2.6, int4_extra_speedup=1.5)
    assert s_of(p, 8, 8) == pytest.approx(2.6)
    assert s_of(p, 8, 4) == pytest.approx(2.6)
    assert s_of(p, 4, 4) == pytest.approx(3.9)
    assert s_of(p, 2, 3) == pytest.approx(3.9)
    assert s_of(p, 9, 8) == 1.0
    assert s_of(p, 8, 32) == 1.0  # float activations: no integer kernels
    assert s_of(p, 32, 8) == 1.0


def test_bit_flexible_law_rounds_up_to_fusion_widths(make_device):
    p = make_device(mode="bit_flexible")
    assert list(fusion_bits(np.array([1, 2, 3, 4, 5, 8, 9, 16, 32]))) == [
        2,
        2,
        4,
        4,
        8,
        8,
        16,
        16,
        32,
    ]
    assert s_of(p, 8, 8) == 1.0
    assert s_of(p, 4, 4) == 4.0
    assert s_of(p, 2, 2) == 16.0
    assert s_of(p, 1, 1) == 16.0  # BitBricks are 2-bit: 1 bit costs as 2
    assert s_of(p, 3, 8) == 2.0
    assert s_of(p, 5, 5) == 1.0
    assert s_of(p, 8, 32) == 0.25


def test_bit_serial_law(make_device):
    p = make_device(mode="bit_serial")
    assert s_of(p, 8, 8) == 1.0
    assert s_of(p, 4, 4) == 4.0
    assert s_of(p, 1, 1) == 64.0
    assert s_of(p, 2, 8) == 4.0
    assert s_of(p, 3, 5) == pytest.approx(64 / 15)


def test_table_law_interpolates_and_clamps(make_device):
    p = make_device(mode="table", latency_table=TABLE)
    t = p.compute.latency_table
    assert s_of(p, 8, 8) == 1.0
    assert s_of(p, 2, 4) == pytest.approx(1 / 0.2)
    # midway in weight bits between 2 and 8 at a=8: (0.4 + 1.0) / 2
    assert float(relative_latency(t, np.array(5), np.array(8))) == pytest.approx(0.7)
    # bilinear: w=5 (half), a=6 (half): mean of the four corners
    assert float(relative_latency(t, np.array(5), np.array(6))) == pytest.approx(
        (0.2 + 0.4 + 0.5 + 1.0) / 4
    )
    # below the grid: clamped to the smallest entry
    assert s_of(p, 1, 1) == pytest.approx(1 / 0.2)
    assert s_of(p, 32, 32) == pytest.approx(1 / 4.0)


def test_laws_are_sane_against_haq_table(make_device):
    """HAQ's MobileNetV2 table relative to W8A8 (docs/hardware.md section 3)."""
    haq = {(4, 4): 0.40, (2, 2): 0.18, (1, 1): 0.087, (8, 4): 0.51, (4, 8): 0.79}
    flex = make_device(mode="bit_flexible")
    serial = make_device(mode="bit_serial")
    for (w, a), rel in haq.items():
        flex_rel = 1 / s_of(flex, w, a)
        assert rel / 3 <= flex_rel <= rel * 3, (w, a)
        assert 1 / s_of(serial, w, a) <= 1.0
    for law in (flex, serial):
        rels = [1 / s_of(law, b, b) for b in (1, 2, 4, 8)]
        assert rels == sorted(rels)


def test_roofline_compute_bound_by_hand(make_device, one_layer_spec):
    spec = one_layer_spec(macs=1000, params=100, act_elems=10)
    p = make_device()
    c = train_cost(p, spec, [8], act_bits=None, batch_size=2, steps=3)
    # each of 3 passes: 1000 * 2 = 2000 MAC at 0.5 * 1e9 MAC/s = 4e-6 s; bytes: forward
    # 100 * 8 / 8 + 2 * 10 * 32 / 8 = 180 B (1.8e-7 s), weight pass 80 + 4 * 100 = 480 B:
    # compute-bound, 1.2e-5 s. Optimizer: 100 params, max(4 * 100 / 1e9, 20 * 100 / 1e9) = 2e-6
    assert c.time_s == pytest.approx(3 * 1.4e-5)
    assert c.energy_j == pytest.approx(2.0 * 3 * 1.4e-5)


def test_roofline_memory_bound_by_hand(make_device, one_layer_spec):
    spec = one_layer_spec(macs=1000, params=100, act_elems=10)
    p = make_device(mem_bandwidth_gb_s=1e-6)  # 1000 B/s
    c = train_cost(p, spec, [8], act_bits=None, batch_size=2, steps=3)
    # 2 x 180 B + 480 B + optimizer 2000 B at 1000 B/s
    assert c.time_s == pytest.approx(3 * (2 * 0.18 + 0.48 + 2.0))
    # fewer bits lower the weight traffic on float hardware: forward 100 * 4 / 8 + 80 = 130 B
    c4 = train_cost(p, spec, [4], act_bits=None, batch_size=2, steps=3)
    assert c4.time_s == pytest.approx(3 * (2 * 0.13 + 0.48 + 2.0))


def test_int8_roofline_by_hand(make_device, one_layer_spec):
    spec = one_layer_spec()
    p = make_device(mode="int8", int8_speedup=2.5)
    c = train_cost(p, spec, [8], act_bits=8, batch_size=2, steps=3)
    # the MACs run 2.5x faster; the optimizer step (float) does not
    assert c.time_s == pytest.approx(3 * (1.2e-5 / 2.5 + 2e-6))
    c_float_act = train_cost(p, spec, [8], act_bits=None, batch_size=2, steps=3)
    assert c_float_act.time_s == pytest.approx(3 * (1.2e-5 + 2e-6))


def test_bottom_up_energy_by_hand(make_device, one_layer_spec):
    spec = one_layer_spec()
    power = {
        "model": "bottom_up",
        "idle_w": 0.1,
        "mac_mult_pj": 0.2,
        "mac_add_pj": 0.1,
        "mem_pj_per_bit": 20.0,
        "static_w": 0.5,
    }
    p = make_device(power=power, mode="bit_flexible")
    c = train_cost(p, spec, [8], act_bits=8, batch_size=2, steps=3)
    # MACs: 6000 x (0.2 x 64/64 + 0.1) = 1800 pJ; optimizer flops 400 x 0.1 = 40 pJ;
    # bytes: 2 x (100 + 2 * 10 * 8 / 8) + (20 + 400) + 20 x 100 = 2660 -> 21280 bits x 20 pJ
    assert c.time_s == pytest.approx(3 * (1.2e-5 + 2e-6))
    assert c.energy_j == pytest.approx(3 * (1800 + 40 + 425_600) * 1e-12 + 0.5 * c.time_s)


def test_elementwise_and_depthwise_by_hand(make_device):
    from fedsim.spec import ElementwiseSpec, LayerSpec, ModelSpec

    spec = ModelSpec(
        name="dw",
        layers=(LayerSpec("dw", "conv", params=9, bias_params=0, macs=900, act_elems=100,
                          in_elems=100, groups=1, depthwise=True),),
        float_params=0,
        elementwise=(ElementwiseSpec("relu_", "activation", in_elems=100, out_elems=100,
                                     flops=100),),
    )
    p = make_device(efficiency={"dense_conv": 0.5, "depthwise_conv": 0.01, "linear": 0.5,
                                "elementwise": 0.001})
    c = train_cost(p, spec, [32], act_bits=None, batch_size=1, steps=1)
    # depthwise: 900 MAC at 0.01 * 1e9 MAC/s = 9e-5 s per pass (bytes 36 + 800 B: 8.4e-7 s);
    # element-wise: 3 x max(100 / (0.001 * 2e9), 4 * 200 / 1e9) = 3 x 5e-5 s;
    # optimizer: max(36 / 2e6, 180 / 1e9) = 1.8e-5 s
    assert c.time_s == pytest.approx(3 * 9e-5 + 3 * 5e-5 + 1.8e-5)


def test_steps_scale_linearly_and_zero_steps_cost_nothing(spec, make_device):
    p = make_device()
    bits = [4, 2]
    one = train_cost(p, spec, bits, act_bits=4, batch_size=8, steps=1)
    ten = train_cost(p, spec, bits, act_bits=4, batch_size=8, steps=10)
    assert ten.time_s == pytest.approx(10 * one.time_s)
    assert ten.energy_j == pytest.approx(10 * one.energy_j)
    zero = train_cost(p, spec, bits, act_bits=4, batch_size=8, steps=0)
    assert zero.time_s == 0 and zero.energy_j == 0


def test_batch_agrees_with_scalar(lib, spec):
    rng = np.random.default_rng(0)
    profiles = [lib.get(n) for n in lib.names()] * 3
    choices = np.array([1, 2, 3, 4, 5, 6, 7, 8, 16, 32])
    bits = rng.choice(choices, size=(len(profiles), spec.n_quantized))
    steps = rng.integers(1, 20, size=len(profiles))
    t, e = train_cost_batch(profiles, spec, bits, act_bits=4, batch_size=16, steps=steps)
    for i, p in enumerate(profiles):
        c = train_cost(p, spec, list(bits[i]), act_bits=4, batch_size=16, steps=int(steps[i]))
        assert t[i] == pytest.approx(c.time_s, rel=1e-12)
        assert e[i] == pytest.approx(c.energy_j, rel=1e-12)


def test_bad_bits_are_rejected(spec, make_device):
    p = make_device()
    with pytest.raises(ValueError, match=r"quantized layers|shape"):
        train_cost(p, spec, [8], act_bits=None, batch_size=1, steps=1)
    with pytest.raises(ValueError, match=r"1\.\.16 or 32"):
        train_cost(p, spec, [8, 0], act_bits=None, batch_size=1, steps=1)
    with pytest.raises(ValueError, match="act_bits"):
        train_cost(p, spec, [8, 8], act_bits=20, batch_size=1, steps=1)
