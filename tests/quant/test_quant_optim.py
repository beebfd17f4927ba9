"""BitPlaneSGD: power-of-two plane steps, clean planes, momentum SGD elsewhere."""

from __future__ import annotations

import copy

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from torch import nn

from fedsim.quant import (
    BitPlaneSGD,
    group_lasso,
    integer_value,
    power_of_two_,
    quantized_layers,
    reduce_precision,
    to_quantized,
)

# The fixtures are only read (to_quantized deep-copies), so reusing them across examples
# is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def _is_power_of_two_or_zero(t: torch.Tensor) -> bool:
    a = t.abs()
    nz = a[a > 0]
    return bool(torch.equal(torch.exp2(torch.log2(nz).round()), nz))


def _train_step(q: nn.Module, opt: BitPlaneSGD, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(q(x), y) + group_lasso(q, 1e-3)
    opt.zero_grad()
    loss.backward()
    opt.step()


@settings(max_examples=20, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    seed=st.integers(0, 2**31 - 1),
    bits=st.lists(st.integers(1, 8), min_size=4, max_size=4),
    lr=st.floats(1e-3, 4.0),
    rounding=st.sampled_from(["round", "ceil", "stochastic"]),
)
def test_planes_binary_and_steps_power_of_two(
    tiny: nn.Module, tiny_input: torch.Tensor, seed: int, bits: list[int], lr: float, rounding: str
) -> None:
    torch.manual_seed(seed)
    q = to_quantized(tiny, bits)
    gen = torch.Generator().manual_seed(seed)
    opt = BitPlaneSGD(q, lr=lr, rounding=rounding, generator=gen)
    y = torch.randint(0, 5, (tiny_input.shape[0],), generator=gen)
    for _ in range(3):
        before = [integer_value(m.planes.detach()) * m.sign for _, m in quantized_layers(q)]
        _train_step(q, opt, tiny_input, y)
        for (_, m), old in zip(quantized_layers(q), before, strict=True):
            assert set(m.planes.unique().tolist()) <= {0.0, 1.0}
            assert set(m.sign.unique().tolist()) <= {-1.0, 1.0}
            step = opt.state[m.planes]["step"]
            assert _is_power_of_two_or_zero(step)
            new = integer_value(m.planes.detach()) * m.sign
            assert torch.equal(new, new.round()) and new.abs().max() <= 2**m.bits - 1
            if rounding == "stochastic":  # whole-LSB moves only
                assert torch.equal(new - old, (new - old).round())


def test_default_step_is_sign_times_power_of_two() -> None:
    lin = nn.Linear(4, 1, bias=False)
    q = to_quantized(nn.Sequential(lin), [3])
    layer = q[0]
    with torch.no_grad():
        layer.planes.zero_()
        layer.planes[1].fill_(1.0)  # q = 2 everywhere
        layer.sign.fill_(1.0)
    opt = BitPlaneSGD(q, lr=0.25, momentum=0.0, float_lr=0.0)
    grad = torch.zeros_like(layer.planes)
    grad[0] = torch.tensor([[-4.0, -2.5, 1.0, 0.0]])  # lr*|g| = 1, 0.625, 0.25, 0
    layer.planes.grad = grad
    opt.step()
    step = opt.state[layer.planes]["step"][0, 0].tolist()
    assert step == [-1.0, -0.5, 0.25, 0.0]  # 2^round(log2): 1 -> 1, 0.625 -> 0.5, 0.25
    # q = 2 + 1 = 3; 2 + 0.5 = 2.5 -> 2 (half to even); 2 - 0.25 -> 2; 2
    assert integer_value(layer.planes.detach())[0].tolist() == [3.0, 2.0, 2.0, 2.0]
    q2 = copy.deepcopy(q)
    opt2 = BitPlaneSGD(q2, lr=0.25, momentum=0.0, float_lr=0.0, rounding="ceil")
    q2[0].planes.grad = grad
    opt2.step()
    assert opt2.state[q2[0].planes]["step"][0, 0].tolist() == [-1.0, -1.0, 0.25, 0.0]


def test_negative_values_flip_sign_and_saturate() -> None:
    q = to_quantized(nn.Sequential(nn.Linear(2, 1, bias=False)), [2])
    layer = q[0]
    with torch.no_grad():
        layer.planes.copy_(torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]]]))  # q = 1, 3
        layer.sign.fill_(1.0)
    opt = BitPlaneSGD(q, lr=1.0, momentum=0.0, float_lr=0.0)
    layer.planes.grad = torch.tensor([[[0.0, -8.0]], [[2.0, 0.0]]])  # q: 1 - 4 = -3 ; 3 + 8
    opt.step()
    assert integer_value(layer.planes.detach()).tolist() == [[3.0, 3.0]]
    assert layer.sign.tolist() == [[-1.0, 1.0]]


def test_float_group_matches_torch_sgd(tiny: nn.Module, tiny_input: torch.Tensor) -> None:
    q = to_quantized(tiny, [4, 4, 4, 4])
    q_ref = copy.deepcopy(q)
    opt = BitPlaneSGD(q, lr=0.25, momentum=0.9, float_lr=0.05, weight_decay=5e-4)
    floats_ref = [p for n, p in q_ref.named_parameters() if not n.endswith("planes")]
    ref = torch.optim.SGD(floats_ref, lr=0.05, momentum=0.9, weight_decay=5e-4)
    y = torch.arange(6) % 5
    for _ in range(3):
        for model, o in ((q, opt), (q_ref, ref)):
            o.zero_grad()
            F.cross_entropy(model(tiny_input), y).backward()
            o.step()
        if True:  # keep the reference's planes in lockstep
            with torch.no_grad():
                for (_, a), (_, b) in zip(
                    quantized_layers(q), quantized_layers(q_ref), strict=True
                ):
                    b.planes.copy_(a.planes)
                    b.sign.copy_(a.sign)
    for (n, a), (_, b) in zip(q.named_parameters(), q_ref.named_parameters(), strict=True):
        if not n.endswith("planes"):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=n)
    assert opt.param_groups[0]["kind"] == "planes" and opt.param_groups[0]["weight_decay"] == 0


def test_no_reallocation_and_bit_change(tiny: nn.Module, tiny_input: torch.Tensor) -> None:
    q = to_quantized(tiny, [8, 8, 8, 8])
    opt = BitPlaneSGD(q, lr=0.25)
    y = torch.arange(6) % 5
    _train_step(q, opt, tiny_input, y)
    layer = q.fc1
    st = opt.state[layer.planes]
    ptrs = {k: v.data_ptr() for k, v in st.items()}
    _train_step(q, opt, tiny_input, y)
    assert {k: v.data_ptr() for k, v in opt.state[layer.planes].items()} == ptrs
    with torch.no_grad():
        layer.planes[7].zero_()
    reduce_precision(q, epsilon=0.0)
    assert layer.bits <= 7
    _train_step(q, opt, tiny_input, y)  # momentum restarts at the new shape
    assert opt.state[layer.planes]["momentum_buffer"].shape == layer.planes.shape


def test_stochastic_is_seeded_and_unbiased() -> None:
    torch.manual_seed(0)
    base = to_quantized(nn.Sequential(nn.Linear(400, 50, bias=False)), [6])
    grad = torch.zeros_like(base[0].planes)
    grad[0].fill_(1.0)  # momentum max 1: a_0 = S(lr) = 0.25 LSB per step on every weight

    mag_before = integer_value(base[0].planes.detach())

    def run(seed: int) -> torch.Tensor:
        q = copy.deepcopy(base)
        opt = BitPlaneSGD(
            q,
            lr=0.25,
            momentum=0.0,
            float_lr=0.0,
            rounding="stochastic",
            generator=torch.Generator().manual_seed(seed),
        )
        q[0].planes.grad = grad.clone()
        opt.step()
        return integer_value(q[0].planes.detach()) - mag_before

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    inner = a[mag_before >= 1]  # away from the sign flip at 0
    assert set(inner.unique().tolist()) <= {-1.0, 0.0}
    assert abs(-inner.mean().item() - 0.25) < 0.05


def test_rejects_bad_arguments(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [4] * 4)
    with pytest.raises(ValueError, match="Generator"):
        BitPlaneSGD(q, lr=0.25, rounding="stochastic")
    with pytest.raises(ValueError):
        BitPlaneSGD(q, lr=0.25, rounding="floor")
    with pytest.raises(ValueError):
        BitPlaneSGD(q, lr=0.0)


def test_power_of_two_helper() -> None:
    x = torch.tensor([0.0, 0.3, 0.75, 1.0, 5.0])
    assert power_of_two_(x.clone()).tolist() == [0.0, 0.25, 1.0, 1.0, 4.0]
    assert power_of_two_(x.clone(), "ceil").tolist() == [0.0, 0.5, 1.0, 1.0, 8.0]
