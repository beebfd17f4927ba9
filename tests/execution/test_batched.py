"""Batched client training (execution.batch_clients) against the sequential loop: the same
clients, batches, momentum and BatchNorm statistics; only float noise may differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsim.algorithms.base import ClientTask
from fedsim.execution.batched import BatchingExecutor, train_batched
from fedsim.execution.worker import WorkerContext, WorkerSetup
from tests.execution.test_ray_executor import tiny_setup


def tasks(n: int, sizes: list[int] | None = None) -> list[ClientTask]:
    from fedsim.models import build_model
    from tests.execution.test_ray_executor import CNN

    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, num_classes=4, image_size=8, options=CNN)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    sizes = sizes or [40] * n
    return [ClientTask(round=0, client_id=c, bits=(32,) * 4, seed=100 + c, lr=0.05,
                       indices=rng.choice(240, size=sizes[c], replace=False),
                       global_state=state, budget_bits=8.0) for c in range(n)]


@pytest.mark.parametrize("method", ["fedavg", "fedprox"])
def test_batched_updates_equal_sequential_ones_to_float_noise(method: str) -> None:
    setup: WorkerSetup = tiny_setup(method)
    if method == "fedprox":
        setup = WorkerSetup(**{**setup.__dict__, "algo_params": {"mu": 0.1}})
    ctx = WorkerContext(setup)
    ts = tasks(5, sizes=[40, 40, 7, 33, 16])  # unequal steps, a shard below one batch
    sequential = [ctx.run(t) for t in ts]
    batched = train_batched(ctx.algorithm, ctx.model, ts, ctx.x, ctx.y)
    for s, b in zip(sequential, batched, strict=True):
        assert list(s.state) == list(b.state)
        for k in s.state:
            assert torch.allclose(s.state[k].float(), b.state[k].float(), rtol=1e-4,
                                  atol=1e-5), k
        assert b.samples == s.samples and b.bits_up == s.bits_up
        assert b.train_loss == pytest.approx(s.train_loss, rel=1e-5)
    # and not trivially: training moved the weights
    w = next(k for k in ts[0].global_state if k.endswith("weight"))
    assert not torch.allclose(batched[0].state[w], ts[0].global_state[w])


def test_the_executor_batches_pending_tasks_deterministically() -> None:
    ts = tasks(7)
    runs = []
    for _ in range(2):
        ex = BatchingExecutor(tiny_setup(), k=3)
        handles = [ex.submit(t) for t in ts]
        handles[4].cancel()
        out = [h.result() for i, h in enumerate(handles) if i != 4]
        assert ex.batches == 2  # [0 1 2] [3 5 6] (4 was cancelled)
        runs.append(out)
    for a, b in zip(*runs, strict=True):
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_a_chunk_is_cut_from_submission_order_whatever_is_asked_first() -> None:
    ts = tasks(7)
    ex = BatchingExecutor(tiny_setup(), k=3)
    handles = [ex.submit(t) for t in ts]
    handles[5].result()  # chunks of the pending tasks: [0 1 2] [3 4 5] [6]
    assert ex.batches == 1
    assert [h.update is not None for h in handles] == [False, False, False, True, True,
                                                       True, False]
    for h in handles:
        h.result()
    assert ex.batches == 3


@pytest.mark.parametrize("image", [8, 12])  # convolutions unfolded (<= 64 positions) / looped
def test_stacked_forward_and_gradients_match_each_clients_model(image: int) -> None:
    from torch.nn import functional as F

    from fedsim.execution.stacked import (
        client_losses,
        compile_layers,
        forward,
        stackable,
    )
    from fedsim.models import build_model

    torch.manual_seed(1)
    k, n = 3, 5
    models = [build_model("cnn", in_channels=2, num_classes=4, image_size=image,
                          options={"channels": [4, 6], "hidden": [8]}) for _ in range(k)]
    assert stackable(models[0]) is None
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models])
              .requires_grad_() for name, _ in models[0].named_parameters()}
    buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in models]).clone()
               for name, _ in models[0].named_buffers()}
    x, y = torch.randn(k, n, 2, image, image), torch.randint(0, 4, (k, n))
    ce = client_losses(forward(compile_layers(models[0]), params, buffers, x), y)
    ce.sum().backward()
    for i, m in enumerate(models):
        m.train()
        loss = F.cross_entropy(m(x[i]), y[i])
        loss.backward()
        assert float(ce[i].detach()) == pytest.approx(float(loss.detach()), rel=1e-5)
        for name, p in m.named_parameters():
            assert torch.allclose(params[name].grad[i], p.grad, rtol=1e-4, atol=1e-6), name
        for name, b in m.named_buffers():
            assert torch.allclose(buffers[name][i].to(b.dtype), b, rtol=1e-5, atol=1e-7), name


def test_models_that_are_not_layer_stacks_are_refused() -> None:
    from fedsim.execution.stacked import stackable
    from fedsim.models import build_model

    resnet = build_model("resnet20", in_channels=3, num_classes=10, image_size=32)
    assert "own forward" in (stackable(resnet) or "")
    drop = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    assert "Dropout" in (stackable(drop) or "")


def test_only_true_layer_stacks_and_the_plain_methods_are_batched() -> None:
    from torch import nn

    from fedsim.algorithms.fedavg import FedAvg
    from fedsim.execution.batched import batchable
    from fedsim.execution.stacked import compile_layers, forward, stackable

    class Residual(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + super().forward(x)

    assert "own forward" in (stackable(nn.Sequential(Residual(nn.Linear(4, 4)))) or "")
    hooked = nn.Sequential(nn.Linear(4, 4))
    hooked[0].register_forward_hook(lambda m, i, o: o * 2)
    assert "hooks" in (stackable(hooked) or "")
    frozen = nn.Sequential(nn.Linear(4, 4))
    frozen[0].bias.requires_grad_(False)
    assert "frozen" in (stackable(frozen) or "")
    lin = nn.Linear(4, 4)
    assert "shared" in (stackable(nn.Sequential(lin, nn.ReLU(), lin)) or "")
    # a module used twice is applied twice, as its forward does
    relu = nn.ReLU()
    twice = nn.Sequential(nn.Linear(3, 4), relu, nn.Linear(4, 2), relu)
    assert stackable(twice) is None
    x = torch.randn(1, 5, 3)
    params = {n: p.detach().unsqueeze(0) for n, p in twice.named_parameters()}
    out = forward(compile_layers(twice), params, {}, x)
    assert torch.allclose(out[0], twice(x[0]), atol=1e-6)

    class MyFedAvg(FedAvg):
        pass

    ctx = WorkerContext(tiny_setup())
    assert batchable(ctx.algorithm)
    assert not batchable(MyFedAvg(ctx.algorithm.hyper, ctx.algorithm.params,
                                  ctx.algorithm.spec))
