"""The options that make FedMPQ follow the authors' code (docs/fidelity.md): per-client
initialisation, round 1 at the budget, bias planes, the code's re-quantization, evaluation
with 16-bit activations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.algorithms.base import ClientInfo, ClientTask, TrainHyper
from fedsim.algorithms.params import BitPlaneParams
from fedsim.algorithms.registry import algorithm_class
from fedsim.models import build_model, model_spec, reinitialise_
from fedsim.quant import (
    BitPlaneSGD,
    float_state_dict,
    group_lasso,
    integer_value,
    load_float_into_quantized,
    reduce_precision,
    to_quantized,
)
from fedsim.quant.layers import ActFakeQuant
from fedsim.quant.representation import SIGN_MAGNITUDE


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_model("cnn", in_channels=1, num_classes=4, image_size=8,
                       options={"channels": [4, 8], "hidden": [16]})


def _algo(name: str = "fedmpq", **params: object):  # type: ignore[no-untyped-def]
    model = _cnn()
    spec = model_spec(model, name="cnn", input_shape=(1, 8, 8))
    hyper = TrainHyper(lr=0.1, momentum=0.9, weight_decay=0.0, batch_size=8, local_epochs=1)
    algo = algorithm_class(name)(hyper, BitPlaneParams(**params), spec)
    algo.setup(model, [ClientInfo(i, b, 32) for i, b in enumerate((2.0, 4.0, 6.0))])
    return algo, model


def _task(algo, cid: int, r: int, bits, seed: int = 11) -> ClientTask:  # type: ignore[no-untyped-def]
    return ClientTask(round=r, client_id=cid, bits=tuple(bits), seed=seed + cid, lr=0.1,
                      indices=np.arange(32), global_state=algo.global_state,
                      budget_bits=algo.clients[cid].budget_bits)


def test_round_one_is_at_the_budget_then_pruning_growing() -> None:
    algo, _ = _algo(allocation="reference")
    n = algo.spec.n_quantized
    first = algo.downlink_bits(0, [0, 1, 2])
    assert first == {0: (2,) * n, 1: (4,) * n, 2: (6,) * n}
    strict, _ = _algo(allocation="strict")
    assert strict.downlink_bits(0, [0])[0] != (2,) * n  # pruned from an all-8 model instead


def test_per_client_init_differs_by_client_and_is_seeded() -> None:
    algo, model = _algo(init="per_client")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 4, (32,), generator=g)
    n = algo.spec.n_quantized
    a = algo._own_init(model, 5)
    b = algo._own_init(model, 5)
    c = algo._own_init(model, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.conv1.weight"], c["features.conv1.weight"])
    assert not torch.equal(a["features.conv1.weight"], algo.global_state["features.conv1.weight"])
    # round 1 trains from the client's own start, later rounds from the global model
    u0 = algo.client_update(model, _task(algo, 0, 0, [2] * n), x, y)
    common, m2 = _algo(init="common")
    v0 = common.client_update(m2, _task(common, 0, 0, [2] * n), x, y)
    assert not torch.equal(u0.state["classifier.out.weight"], v0.state["classifier.out.weight"])


def test_reinitialise_leaves_the_global_rng_alone() -> None:
    model = _cnn()
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    reinitialise_(model, 42)
    assert torch.equal(before, torch.random.get_rng_state())


def test_bias_planes_round_trip_train_and_reduce() -> None:
    model = _cnn()
    q = to_quantized(model, [4] * 4, bias_planes=True)
    layer = q.classifier.out
    assert layer.bias is None and layer.bias_bits == 4
    # the float state still has the float model's keys; the bias decodes to its grid
    state = float_state_dict(q)
    assert set(state) == set(model.state_dict())
    b = model.classifier.out.bias.detach()
    assert torch.allclose(state["classifier.out.bias"], b, atol=float(b.abs().max()) / 15)
    # downlink re-encodes the bias at the layer's new bits
    load_float_into_quantized(q, model.state_dict(), [3] * 4)
    assert layer.bias_bits == 3
    # it trains (a plain momentum step, then the code's re-quantization) and counts in the
    # group Lasso
    opt = BitPlaneSGD(q, lr=0.5, rule="reference", generator=torch.Generator().manual_seed(0))
    kinds = [g["kind"] for g in opt.param_groups]
    assert kinds == ["planes", "float", "bias_planes"]
    group_lasso(q, 1.0).backward()  # the bias planes are groups of the Lasso too
    assert layer.bias_planes.grad is not None and float(layer.bias_planes.grad.abs().sum()) > 0
    q.zero_grad(set_to_none=True)
    x = torch.randn(16, 1, 8, 8)
    loss = nn.functional.cross_entropy(q(x), torch.arange(16) % 4) + group_lasso(q, 1e-3)
    loss.backward()
    assert layer.bias_planes.grad is not None and layer.bias_scale.grad is not None
    opt.step()
    assert torch.equal(layer.bias_planes, layer.bias_planes.round())
    # precision reduction applies to the bias planes too (empty planes go)
    with torch.no_grad():
        layer.bias_planes.zero_()
        layer.bias_planes[0].fill_(1.0)
    reduce_precision(q, 0.0)
    assert layer.bias_bits == 1


def test_code_requantize_keeps_excess_and_negative_digits() -> None:
    planes = torch.zeros(3, 4)
    # integer values 9 (over 7), -3, 5.4 -> 5, 2
    want = torch.tensor([9.0, -3.0, 5.4, 2.0])
    planes[0] = want  # all the value in the LSB plane, to be re-split
    SIGN_MAGNITUDE.requantize_code_(planes)
    assert integer_value(planes).tolist() == [9.0, -3.0, 5.0, 2.0]
    assert planes[2].tolist() == [2.0, -1.0, 1.0, 0.0]  # the top digit holds the excess / sign
    assert set(planes[:2].unique().tolist()) <= {0.0, 1.0}


def test_eval_model_uses_16_bit_activations_behind_the_clip() -> None:
    algo, model = _algo(eval_act_bits=16)
    ev = algo.eval_model(model)
    acts = [m for m in ev.modules() if isinstance(m, ActFakeQuant)]
    assert acts and all(a.bits == 16 and a.clip == 6.0 for a in acts)
    assert set(ev.state_dict()) == set(model.state_dict())
    none, m2 = _algo(eval_act_bits=None)
    assert none.eval_model(m2) is m2


@pytest.mark.parametrize("rule", ["paper", "reference"])
def test_client_update_is_deterministic(rule: str) -> None:
    algo, model = _algo(update_rule=rule, bias="planes", init="per_client")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 4, (32,), generator=g)
    n = algo.spec.n_quantized
    a = algo.client_update(model, _task(algo, 1, 0, [4] * n), x, y)
    b = copy.deepcopy(algo).client_update(copy.deepcopy(model), _task(algo, 1, 0, [4] * n), x, y)
    assert a.bits_up == b.bits_up
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
