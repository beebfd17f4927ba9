"""Bit-plane representation: binarize, de-quantize, re-quantize."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

from fedsim.quant.representation import (
    SIGN_MAGNITUDE,
    binarize,
    check_bits,
    dequantize,
    integer_value,
    levels,
    requantize_,
)

SETTINGS = settings(max_examples=60, deadline=None)


def _tensor(seed: int, shape: tuple[int, ...], spread: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * spread


@SETTINGS
@given(
    bits=st.integers(1, 8),
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(7,), (3, 5), (4, 2, 3, 3)]),
    spread=st.floats(1e-3, 1e3),
)
def test_binarize_dequantize_within_half_step(
    bits: int, seed: int, shape: tuple[int, ...], spread: float
) -> None:
    w = _tensor(seed, shape, spread)
    planes, sign, scale = binarize(w, bits)
    assert planes.shape == (bits, *shape)
    assert torch.equal(scale, w.abs().max())
    half_step = scale / levels(bits) / 2
    err = (dequantize(planes, sign, scale) - w).abs().max()
    assert err <= half_step * (1 + 1e-5)
    assert set(planes.unique().tolist()) <= {0.0, 1.0}
    assert set(sign.unique().tolist()) <= {-1.0, 1.0}


def test_what_rounds_to_zero_is_negative_and_zero_layer() -> None:
    w = torch.tensor([0.0, -1.0, 0.001, 1.0])
    planes, sign, scale = binarize(w, 2)
    assert sign.tolist() == [-1.0, -1.0, -1.0, 1.0]  # 0 and 0.001 (rounds to 0) get -1, as
    # in the code: its value is 0 either way, but the planes' gradient carries the sign
    assert integer_value(planes).tolist() == [0.0, 3.0, 0.0, 3.0]
    planes, sign, scale = binarize(torch.zeros(3, 3), 4)
    assert scale.item() == 0.0 and planes.abs().sum() == 0
    assert torch.equal(dequantize(planes, sign, scale), torch.zeros(3, 3))


def test_planes_are_lsb_first() -> None:
    w = torch.tensor([6.0, 1.0, 7.0])  # scale 7, 3 bits: q = 6, 1, 7
    planes, _, _ = binarize(w, 3)
    assert planes[:, 0].tolist() == [0.0, 1.0, 1.0]  # 6 = 0b110
    assert planes[:, 1].tolist() == [1.0, 0.0, 0.0]


def test_requantize_clamps_and_flips_sign() -> None:
    # 3 bits; real-valued planes after a step: q = 9.2 (clamp to 7), -2.6 (flip, 3), 1.4 (1)
    planes = torch.tensor([[9.2, -2.6, 1.4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    sign = torch.tensor([1.0, 1.0, -1.0])
    requantize_(planes, sign)
    assert integer_value(planes).tolist() == [7.0, 3.0, 1.0]
    assert sign.tolist() == [1.0, -1.0, -1.0]
    assert set(planes.unique().tolist()) <= {0.0, 1.0}


def test_requantize_with_delta_and_workspace_reuse() -> None:
    w = torch.tensor([3.0, -1.0, 0.0, 2.0])
    planes, sign, _ = binarize(w, 2)
    work = torch.empty(4)
    ptr = work.data_ptr()
    SIGN_MAGNITUDE.requantize_(planes, sign, delta=torch.tensor([-1.0, -2.0, 1.0, 5.0]), work=work)
    assert integer_value(planes).tolist() == [2.0, 1.0, 1.0, 3.0]
    # 1 - 2 = -1 flips the second weight's sign; the third (0, so "negative") keeps -1
    assert sign.tolist() == [1.0, 1.0, -1.0, 1.0]
    assert work.data_ptr() == ptr


@pytest.mark.parametrize("bad", [0, 9, 2.0, True, "4", None])
def test_check_bits_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        check_bits(bad)


def test_check_bits_float_layer() -> None:
    assert check_bits(32, allow_float=True) == 32
    with pytest.raises(ValueError):
        check_bits(32)
