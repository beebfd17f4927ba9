"""Training memory footprint and the feasibility check (1 byte over must not fit)."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.hardware import (
    DeviceProfile,
    apply_override,
    check_memory,
    check_memory_batch,
    train_memory_bytes,
    train_memory_bytes_batch,
    usable_memory_bytes,
)


def expected_bytes(spec, bits, batch, opt=12):
    full = spec.expand_bits(bits)
    state = sum(
        layer.params * (opt if b == 32 else b * opt)
        for layer, b in zip(spec.layers, full, strict=True)
    )
    state += spec.float_params * opt
    acts = sum(layer.act_elems for layer in spec.layers) + spec.other_act_elems + spec.input_elems
    workspace = 2 * batch * max(layer.act_elems for layer in spec.layers) * 4
    return state + batch * acts * 4 + workspace


def test_footprint_by_hand(spec):
    # conv1 432 params x 12 x 4 bits, shortcut 64 x 12 (float), fc 160 x 12 x 2, float 74 x 12
    state = 432 * 48 + 64 * 12 + 160 * 24 + 74 * 12
    acts = (4096 + 1024 + 10 + 2048 + 768) * 4 * 8
    workspace = 2 * 8 * 4096 * 4
    got = train_memory_bytes(spec, [4, 2], batch_size=8, act_bits=4)
    assert got == state + acts + workspace == expected_bytes(spec, [4, 2], 8)


def test_float_layer_is_12_bytes_and_planes_12b(spec):
    base = train_memory_bytes(spec, [32, 32], batch_size=1, act_bits=None)
    eight = train_memory_bytes(spec, [8, 32], batch_size=1, act_bits=None)
    assert eight - base == 432 * (96 - 12)  # 8 planes x 12 B vs one float weight's 12 B


def test_optimizer_state(spec):
    sgd = train_memory_bytes(spec, [32, 32], batch_size=1, act_bits=None, optimizer="sgd")
    adam = train_memory_bytes(spec, [32, 32], batch_size=1, act_bits=None, optimizer="adam")
    assert adam - sgd == (432 + 64 + 160 + 74) * 8
    with pytest.raises(ValueError, match="optimizer"):
        train_memory_bytes(spec, [32, 32], batch_size=1, act_bits=None, optimizer="lion")


def test_fake_quant_saves_float_activations(spec):
    a4 = train_memory_bytes(spec, [4, 4], batch_size=4, act_bits=4)
    afloat = train_memory_bytes(spec, [4, 4], batch_size=4, act_bits=None)
    assert a4 == afloat


def _with_usable_bytes(profile: DeviceProfile, usable: int) -> DeviceProfile:
    return apply_override(profile, {"memory.ram_mb": usable / 2**20, "memory.usable_fraction": 1.0})


def test_one_byte_over_does_not_fit(spec, make_device):
    need = train_memory_bytes(spec, [4, 2], batch_size=8, act_bits=4)
    exact = _with_usable_bytes(make_device(), need)
    assert usable_memory_bytes(exact) == need
    assert check_memory(exact, spec, [4, 2], batch_size=8, act_bits=4) is None
    short = _with_usable_bytes(make_device(), need - 1)
    reason = check_memory(short, spec, [4, 2], batch_size=8, act_bits=4)
    assert reason is not None
    assert reason.startswith("needs ") and "usable" in reason and reason.endswith("1 B over")


def test_reason_names_ram_and_fraction(spec, make_device):
    p = make_device()  # 1 MiB x 0.5
    reason = check_memory(p, spec, [8, 8], batch_size=64, act_bits=4)
    assert reason is not None
    assert "usable 512 KB (1 MB x 0.5)" in reason


def test_batch_versions_agree(spec, lib):
    rng = np.random.default_rng(1)
    bits = rng.integers(1, 9, size=(20, spec.n_quantized))
    got = train_memory_bytes_batch(spec, bits, batch_size=32, act_bits=4)
    for row, g in zip(bits, got, strict=True):
        assert g == train_memory_bytes(spec, list(row), batch_size=32, act_bits=4)
    profiles = [lib.get("stm32l4r5"), lib.get("raspberry_pi_4")] * 10
    fits = check_memory_batch(profiles, spec, bits, batch_size=32, act_bits=4)
    for p, row, f in zip(profiles, bits, fits, strict=True):
        assert f == (check_memory(p, spec, list(row), batch_size=32, act_bits=4) is None)
