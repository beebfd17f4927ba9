"""Fewer bits never cost more time, energy, memory or payload (every shipped profile)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.hardware import ProfileLibrary, train_cost_batch, train_memory_bytes_batch
from fedsim.payload import model_payload_bits
from fedsim.spec import LayerSpec, ModelSpec

SPEC = ModelSpec(
    name="mono",
    layers=(
        LayerSpec("c1", "conv", 432, 0, 442_368, 16_384),
        LayerSpec("c2", "conv", 2304, 0, 2_359_296, 16_384),
        LayerSpec("sc", "conv", 256, 0, 65_536, 4096, quantized=False),
        LayerSpec("fc", "linear", 640, 10, 640, 10),
    ),
    float_params=200,
    other_act_elems=32_768,
    input_elems=3072,
)
LIB = ProfileLibrary.load()
PROFILES = [LIB.get(n) for n in LIB.names()]
BITS = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 32])
ACT = st.sampled_from([None, 2, 4, 8, 16])


@settings(max_examples=60, deadline=None)
@given(
    bits=st.lists(BITS, min_size=3, max_size=3),
    layer=st.integers(0, 2),
    lower_to=st.integers(1, 31),
    act=ACT,
    batch=st.sampled_from([1, 8, 64]),
)
def test_lowering_one_layer_never_costs_more(bits, layer, lower_to, act, batch):
    hi = list(bits)
    lo = list(bits)
    lo[layer] = min(lo[layer], lower_to)
    if lo[layer] > 16 and lo[layer] != 32:
        lo[layer] = 16
    both = np.array([hi, lo] * len(PROFILES))
    profiles = [p for p in PROFILES for _ in (0, 1)]
    t, e = train_cost_batch(profiles, SPEC, both, act_bits=act, batch_size=batch, steps=3)
    assert np.all(t[1::2] <= t[0::2] * (1 + 1e-12))
    assert np.all(e[1::2] <= e[0::2] * (1 + 1e-12))
    assert model_payload_bits(SPEC, lo) <= model_payload_bits(SPEC, hi)
    if hi[layer] != 32:  # plane widths: memory grows with b (a float layer is a different form)
        m = train_memory_bytes_batch(SPEC, np.array([hi, lo]), batch_size=batch, act_bits=act)
        assert m[1] <= m[0]


@settings(max_examples=30, deadline=None)
@given(bits=st.lists(BITS, min_size=3, max_size=3), a_hi=st.sampled_from([4, 8, 16, 32]))
def test_fewer_activation_bits_never_cost_more(bits, a_hi):
    profiles = PROFILES
    b = np.array([bits] * len(profiles))
    t_hi, e_hi = train_cost_batch(profiles, SPEC, b, act_bits=a_hi, batch_size=8, steps=1)
    t_lo, e_lo = train_cost_batch(profiles, SPEC, b, act_bits=a_hi // 2, batch_size=8, steps=1)
    assert np.all(t_lo <= t_hi * (1 + 1e-12))
    assert np.all(e_lo <= e_hi * (1 + 1e-12))


def test_float_mode_bits_do_not_change_compute_bound_time():
    pi = LIB.get("raspberry_pi_4")
    t, _ = train_cost_batch(
        [pi, pi], SPEC, np.array([[2, 2, 2], [8, 8, 8]]), act_bits=4, batch_size=64, steps=1
    )
    # Compute-bound on float hardware: no bit speed-up (docs/hardware.md section 1).
    assert t[0] == t[1]
