"""Tasks and updates cross the process boundary as bytes: exact round trips."""

from __future__ import annotations

import numpy as np
import torch

from fedsim.algorithms.base import ClientTask, ClientUpdate
from fedsim.execution.worker import pack, unpack


def test_tensors_of_every_kind_come_back_exactly() -> None:
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    tensors = {
        "float": torch.randn(3, 5),
        "view": base[1:3, ::2],  # a strided view of a larger storage
        "scalar": torch.tensor(7, dtype=torch.int64),
        "bool": torch.tensor([True, False]),
        "half": torch.randn(4).half(),
        "bf16": torch.randn(4).bfloat16(),  # no numpy dtype: torch's own pickling
        "grad": torch.randn(2, requires_grad=True),
    }
    back = unpack(pack(tensors))
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape, k
        assert torch.equal(back[k].detach(), t.detach()), k
    assert back["grad"].requires_grad
    back["float"].add_(1)  # the arrays are the receiver's own, writable memory
    assert not torch.equal(back["float"], tensors["float"])


def test_a_task_and_an_update_round_trip() -> None:
    state = {"w": torch.randn(3, 3), "n": torch.tensor(2)}
    task = ClientTask(round=1, client_id=4, bits=(8, 4), seed=9, lr=0.1,
                      indices=np.array([5, 1, 3]), global_state=state, budget_bits=4.0)
    t2 = unpack(pack(task))
    assert (t2.round, t2.client_id, t2.bits, t2.seed, t2.lr) == (1, 4, (8, 4), 9, 0.1)
    assert np.array_equal(t2.indices, task.indices)
    assert all(torch.equal(t2.global_state[k], state[k]) for k in state)
    u = ClientUpdate(round=1, client_id=4, state=state, bits_up=(8, 4), samples=3,
                     train_loss=0.5, client_state={"r": torch.tensor([1, 0])})
    u2 = unpack(pack(u))
    assert torch.equal(u2.client_state["r"], u.client_state["r"]) and u2.train_loss == 0.5
