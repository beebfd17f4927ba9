"""Bit-level group Lasso and its closed-form gradient."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

from fedsim.quant import (
    add_group_lasso_grad_,
    group_lasso,
    group_lasso_grad,
    quantized_layers,
    to_quantized,
)

# The fixtures are only read (to_quantized deep-copies), so reusing them across examples
# is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def test_value_by_hand() -> None:
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    q = to_quantized(model, [2, 1])
    with torch.no_grad():
        q[0].planes.copy_(torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]]))
        q[1].planes.copy_(torch.tensor([[[1.0, 1.0]]]))
    p_tot = 6
    eps = 1e-8
    expect = (4 * 2) * (math.sqrt(3 + eps) + math.sqrt(1 + eps)) + (2 * 1) * math.sqrt(2 + eps)
    expect *= 1e-3 / p_tot
    assert group_lasso(q, 1e-3).item() == torch.tensor(expect, dtype=torch.float32).item()


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    seed=st.integers(0, 2**31 - 1),
    bits=st.lists(st.integers(1, 8), min_size=4, max_size=4),
    lam=st.floats(1e-5, 1.0),
    binary=st.booleans(),
)
def test_gradient_matches_autograd(
    tiny: nn.Module, seed: int, bits: list[int], lam: float, binary: bool
) -> None:
    q = to_quantized(tiny, bits)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in quantized_layers(q):
            r = torch.rand(m.planes.shape, generator=g)
            m.planes.copy_((r > 0.7).float() if binary else r * 2 - 0.5)
            if m.bits > 1:
                m.planes[-1].zero_()  # an empty group: gradient must stay finite (0)
    q.zero_grad()
    group_lasso(q, lam).backward()
    auto = [m.planes.grad.clone() for _, m in quantized_layers(q)]
    closed = group_lasso_grad(q, lam)
    for a, c in zip(auto, closed, strict=True):
        torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-12)
    q.zero_grad()
    add_group_lasso_grad_(q, lam)
    add_group_lasso_grad_(q, lam)  # accumulates like autograd
    for a, (_, m) in zip(auto, quantized_layers(q), strict=True):
        torch.testing.assert_close(m.planes.grad, 2 * a, rtol=1e-5, atol=1e-12)


def test_no_quantized_layers_is_zero() -> None:
    q = to_quantized(nn.Sequential(nn.Linear(2, 2)), [32])
    assert group_lasso(q, 1e-3).item() == 0.0
    assert group_lasso_grad(q, 1e-3) == []
