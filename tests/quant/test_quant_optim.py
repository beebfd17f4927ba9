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
    rounding=st.sampled_from(["round", "ceil", "reference"]),
)
def test_planes_binary_and_steps_power_of_two(
    tiny: nn.Module, tiny_input: torch.Tensor, seed: int, bits: list[int], lr: float, rounding: str
) -> None:
    torch.manual_seed(seed)
    q = to_quantized(tiny, bits)
    gen = torch.Generator().manual_seed(seed)
    rule = "reference" if rounding == "reference" else "paper"
    opt = BitPlaneSGD(q, lr=lr, rounding="round" if rule == "reference" else rounding,
                      rule=rule, generator=gen)
    y = torch.randint(0, 5, (tiny_input.shape[0],), generator=gen)
    for _ in range(3):
        before = [integer_value(m.planes.detach()) * m.sign for _, m in quantized_layers(q)]
        _train_step(q, opt, tiny_input, y)
        for (_, m), _old in zip(quantized_layers(q), before, strict=True):
            assert set(m.sign.unique().tolist()) <= {-1.0, 1.0}
            w = m.dequantized_weight() / m.scale.clamp_min(1e-30)
            lv = 2**m.bits - 1
            assert torch.allclose(w * lv, (w * lv).round(), atol=1e-3)  # on the grid
            if rule == "reference":  # the code's re-quantization: integer digits, maybe not 0/1
                assert torch.equal(m.planes, m.planes.round())
                continue
            assert set(m.planes.unique().tolist()) <= {0.0, 1.0}
            step = opt.state[m.planes]["step"]
            assert _is_power_of_two_or_zero(step)
            new = integer_value(m.planes.detach()) * m.sign
            assert torch.equal(new, new.round()) and new.abs().max() <= 2**m.bits - 1


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


def _code_step(m: torch.Tensor, lr: float, gen: torch.Generator) -> torch.Tensor:
    """The authors' optimizer's plane step, written independently from its description
    (REFERENCE_RUN.md): planes MSB *last* here, as the code stores them ``[..., b]``."""
    b = m.shape[-1]
    gs = m.abs().max() / (2**b - 1)
    places = torch.tensor([2.0 ** (b - 1 - i) for i in range(b)])  # MSB first
    e = torch.round(torch.log2(m.abs() / gs * lr))
    d = (2.0**e) * places
    keep = (d >= 1) & (d <= 2**b)
    step = torch.where(keep, d, torch.zeros_like(d)) * gs * torch.where(m > 0, 1.0, -1.0)
    p = torch.where(d < 1, d, torch.zeros_like(d)).sum(-1).clamp(0, 1)
    torch.bernoulli(p, generator=gen)
    carry = torch.bernoulli(p, generator=gen)
    step[..., -1] += carry * gs * torch.where(m[..., 0] > 0, 1.0, -1.0)
    return step


def test_reference_rule_matches_the_code_step() -> None:
    """Same momentum, same seed: the reference rule's step equals the code's, bit for bit,
    over several momentum steps (the buffer is overwritten by the step, lr applied twice)."""
    torch.manual_seed(0)
    q = to_quantized(nn.Sequential(nn.Linear(30, 20, bias=False)), [6])
    layer = q[0]
    opt = BitPlaneSGD(q, lr=0.1, momentum=0.9, float_lr=0.0, rule="reference",
                      generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    buf = None
    for k in range(4):
        grad = torch.randn_like(layer.planes) * (10.0 ** -k)
        before = layer.planes.detach().clone()
        layer.planes.grad = grad.clone()
        opt.step()
        g_last = grad.movedim(0, -1).flip(-1)  # LSB-first [b, ...] -> MSB-first [..., b]
        buf = g_last if buf is None else 0.9 * buf + g_last
        want = _code_step(buf, 0.1, gen)
        got = opt.state[layer.planes]["step"].movedim(0, -1).flip(-1)
        assert torch.equal(got, want), k
        buf = want  # the code overwrites its momentum buffer with the step
        # planes moved by lr * step before re-quantization (lr applied twice overall)
        moved = integer_value(before - 0.1 * opt.state[layer.planes]["step"]).round()
        # ... and re-quantized as the code does: no clamp at 63, no sign flip below 0
        assert torch.equal(integer_value(layer.planes.detach()), moved)


def test_reference_rule_freezes_low_bits_and_moves_high_bits() -> None:
    """The property the fidelity work turned on: at lr 0.1 the code's step grows with 2^b."""
    torch.manual_seed(1)
    lin = nn.Linear(64, 32, bias=False)
    changed = {}
    for bits in (2, 8):
        q = to_quantized(nn.Sequential(copy.deepcopy(lin)), [bits])
        opt = BitPlaneSGD(q, lr=0.1, momentum=0.0, float_lr=0.0, rule="reference",
                          generator=torch.Generator().manual_seed(3))
        before = q[0].dequantized_weight()
        g = torch.Generator().manual_seed(5)
        q[0].planes.grad = torch.randn(q[0].planes.shape, generator=g)
        opt.step()
        changed[bits] = float((q[0].dequantized_weight() != before).float().mean())
    assert changed[2] < 0.05 < changed[8]


def test_rejects_bad_arguments(tiny: nn.Module) -> None:
    q = to_quantized(tiny, [4] * 4)
    with pytest.raises(ValueError, match="Generator"):
        BitPlaneSGD(q, lr=0.25, rule="reference")
    with pytest.raises(ValueError):
        BitPlaneSGD(q, lr=0.25, rounding="stochastic")
    with pytest.raises(ValueError):
        BitPlaneSGD(q, lr=0.25, rule="later")
    with pytest.raises(ValueError):
        BitPlaneSGD(q, lr=0.0)


def test_power_of_two_helper() -> None:
    x = torch.tensor([0.0, 0.3, 0.75, 1.0, 5.0])
    assert power_of_two_(x.clone()).tolist() == [0.0, 0.25, 1.0, 1.0, 4.0]
    assert power_of_two_(x.clone(), "ceil").tolist() == [0.0, 0.5, 1.0, 1.0, 8.0]
