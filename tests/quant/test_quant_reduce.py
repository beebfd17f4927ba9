"""Precision reduction: MSB/LSB rules, saturation, scale update."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

from fedsim.quant import QLinear, get_bits, integer_value, reduce_layer_, reduce_precision
from fedsim.quant.representation import levels

# The fixtures are only read (to_quantized deep-copies), so reusing them across examples
# is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def _layer(q_values: list[int], bits: int, scale: float = 1.0) -> QLinear:
    layer = QLinear(len(q_values), 1, bias=False, bits=bits)
    q = torch.tensor([q_values], dtype=torch.float32)
    with torch.no_grad():
        for i in range(bits):
            layer.planes[i].copy_(torch.floor(q / 2**i) % 2)
        layer.scale.fill_(scale)
        layer.sign.copy_(torch.where(torch.arange(len(q_values)) % 2 == 0, 1.0, -1.0))
    return layer


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(2, 8),
    top_empty=st.integers(0, 7),
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 1e3),
)
def test_dropping_empty_msb_planes_keeps_weights(
    bits: int, top_empty: int, seed: int, scale: float
) -> None:
    top_empty = min(top_empty, bits - 1)
    g = torch.Generator().manual_seed(seed)
    hi = 2 ** (bits - top_empty)
    q = torch.randint(0, hi, (64,), generator=g)
    q[0] = hi - 1  # top kept plane dense enough? keep at least one weight using it
    q[1:40] = q[1:40] | 1  # LSB plane dense: no LSB drop
    q[40:48] = hi - 1
    layer = _layer(q.tolist(), bits, scale)
    w_before = layer.dequantized_weight()
    new = reduce_layer_(layer, epsilon=0.0)
    assert new == bits - top_empty
    torch.testing.assert_close(layer.dequantized_weight(), w_before, rtol=1e-6, atol=0.0)
    assert set(layer.planes.unique().tolist()) <= {0.0, 1.0}


def test_lsb_drop_doubles_the_scale() -> None:
    # 4 bits, LSB plane empty (even values): dropping it doubles the step s/(2^b-1).
    layer = _layer([8, 2, 14, 6, 0, 12], 4, scale=3.0)
    step_before = layer.scale.item() / levels(4)
    w_before = layer.dequantized_weight()
    assert reduce_layer_(layer, epsilon=0.0) == 3
    assert layer.scale.item() / levels(3) == pytest.approx(2 * step_before, rel=1e-6)
    torch.testing.assert_close(layer.dequantized_weight(), w_before, rtol=1e-6, atol=0.0)
    # two empty LSB planes: the step quadruples (scale doubled twice before the rescale)
    layer = _layer([8, 4, 12, 4], 4, scale=3.0)
    assert reduce_layer_(layer, epsilon=0.0) == 2
    assert layer.scale.item() / levels(2) == pytest.approx(4 * 3.0 / 15, rel=1e-6)


def test_sparse_lsb_is_truncated() -> None:
    vals = [6] * 99 + [7]  # LSB density 1 % <= 2 %
    layer = _layer(vals, 3)
    assert reduce_layer_(layer, epsilon=0.02) == 2
    assert integer_value(layer.planes.detach()).unique().tolist() == [3.0]


def test_msb_saturation_is_cumulative() -> None:
    # 4 bits, 200 weights: one weight uses plane 3 only (q=8), one uses plane 2 only (q=4):
    # both MSB planes are sparse (0.5 %, and 1 % once plane 3 is ORed into plane 2); the
    # rest use planes 0-1 densely.
    vals = [8, 4] + [3, 1, 2] * 66
    layer = _layer(vals, 4, scale=1.0)
    new = reduce_layer_(layer, epsilon=0.02, merge="cumulative")
    assert new == 2
    q = integer_value(layer.planes.detach())[0]
    assert q[0].item() == 3 and q[1].item() == 3  # both saturated to the new maximum
    assert layer.scale.item() == pytest.approx(3 / 15)
    # the code's snapshot: densities counted once, only the last plane dropped is ORed in, so
    # the weight that had only the top bit loses it
    layer = _layer(vals, 4, scale=1.0)
    assert reduce_layer_(layer, epsilon=0.02) == 2
    q = integer_value(layer.planes.detach())[0]
    assert q[0].item() == 0 and q[1].item() == 3
    # with saturate=False the sparse planes stay
    layer = _layer(vals, 4)
    assert reduce_layer_(layer, epsilon=0.02, saturate=False) == 4


def test_never_below_one_bit() -> None:
    layer = _layer([0, 0, 0, 0], 5, scale=2.0)
    assert reduce_layer_(layer, epsilon=0.5) == 1
    assert layer.bits == 1 and layer.planes.shape == (1, 1, 4)


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    seed=st.integers(0, 2**31 - 1),
    bits=st.lists(st.integers(1, 8), min_size=4, max_size=4),
    epsilon=st.floats(0.0, 1.0),
    density=st.floats(0.0, 1.0),
)
def test_reduced_bits_never_exceed(
    tiny: nn.Module, seed: int, bits: list[int], epsilon: float, density: float
) -> None:
    from fedsim.quant import quantized_layers, to_quantized

    q = to_quantized(tiny, bits)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in quantized_layers(q):
            m.planes.copy_((torch.rand(m.planes.shape, generator=g) < density).float())
    new, red = reduce_precision(q, epsilon)
    assert all(1 <= n <= b for n, b in zip(new, bits, strict=True))
    assert red == [b - n for b, n in zip(bits, new, strict=True)]
    assert get_bits(q) == new


def test_float_entries_and_bad_epsilon(tiny: nn.Module) -> None:
    from fedsim.quant import to_quantized

    q = to_quantized(tiny, [32, 8, 8, 8])
    new, red = reduce_precision(q, 0.02)
    assert new[0] == 32 and red[0] == 0
    with pytest.raises(ValueError):
        reduce_precision(q, 2.0)


def test_code_merge_keeps_only_the_last_sparse_plane() -> None:
    """Two sparse top planes: the code rebuilds from its snapshot, so only the lower one's
    bits are ORed in; cumulative ORs both. An empty plane below a sparse one cancels the OR."""
    import torch as _t

    from fedsim.quant.reduce import _reduce_planes

    n = 100
    base = _t.zeros(4, n)
    base[0, :60] = 1.0  # dense
    base[1, :60] = 1.0  # dense
    base[2, 98] = 1.0  # 1 % dense
    base[3, 99] = 1.0  # 1 % dense (top)
    code, cum = base.clone(), base.clone()
    assert _reduce_planes(code, n, 0.02, True, "code")[:2] == (0, 2)
    # cumulative recounts: plane 2 is 2 % dense once plane 3 is ORed in, so it stays
    assert _reduce_planes(cum, n, 0.02, True, "cumulative")[:2] == (0, 3)
    # weight 99 had only the top bit: the code loses it, cumulative saturates it
    assert code[:2, 99].tolist() == [0.0, 0.0]
    assert cum[:3, 99].tolist() == [1.0, 1.0, 1.0]
    assert code[:2, 98].tolist() == [1.0, 1.0]
    empty_below = base.clone()
    empty_below[2].zero_()  # sparse top, then an empty plane: the code keeps no OR
    assert _reduce_planes(empty_below, n, 0.02, True, "code")[:2] == (0, 2)
    assert empty_below[:2, 99].tolist() == [0.0, 0.0]


def test_code_merge_to_one_bit_is_not_capped_for_weights_but_is_for_biases() -> None:
    """The code's weight loop breaks on reaching one plane before it caps the ORed digits at
    1 (a digit of 2 survives there); its bias loop caps first."""
    import torch as _t

    from fedsim.quant.reduce import _reduce_planes

    base = _t.zeros(2, 100)
    base[0, :50] = 1.0  # LSB dense
    base[1, 0] = 1.0  # MSB 1 % dense, on a weight whose LSB is set
    w, b = base.clone(), base.clone()
    assert _reduce_planes(w, 100, 0.02, True, "code")[:2] == (0, 1)
    assert w[0, 0].item() == 2.0
    assert _reduce_planes(b, 100, 0.02, True, "code", cap_at_one_bit=True)[:2] == (0, 1)
    assert b[0, 0].item() == 1.0
