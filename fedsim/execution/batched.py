"""Batched client training: K clients' local SGD as one stacked forward/backward.

Why: a cross-device round trains hundreds of clients for a couple of 20-sample steps each;
run one at a time, a CPU spends part of its time in per-operator overhead. Here the K
clients' weights are stacked and every step runs once for all of them
(:mod:`fedsim.execution.stacked`): each client still sees exactly its own batches (drawn
from its own seeded generator, as :func:`fedsim.algorithms.training.local_sgd` draws them),
its own momentum buffer and its own BatchNorm statistics, and clients with fewer steps
stop updating (they leave the stack). Only the float arithmetic inside the kernels differs
from the sequential loop (summation order), so the results agree to float noise, not bit
for bit: ``execution.batch_clients`` is an execution setting recorded with the run and
compared on resume, like ``threads``.

Whether it is faster depends on where the time goes (docs/performance.md, "Many clients
per round"): on small inputs per-operator overhead matters and stacking gains; on the
small CNN at 28x28 the kernels' own work dominates and stacked tensors fall out of the
CPU's caches, so one client at a time is as fast or faster.

Supported: methods whose client update is plain float SGD (FedAvg, FedProx) on models that
are layer stacks (:func:`fedsim.execution.stacked.stackable`); :func:`batchable` says so
per method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fedsim.algorithms.base import Algorithm, ClientTask, ClientUpdate
from fedsim.algorithms.training import load_state, state_tensors, steps_per_epoch
from fedsim.execution.stacked import client_losses, compile_layers, forward, stack_state
from fedsim.spec import FLOAT_BITS

#: methods whose client update is plain float SGD (optionally with FedProx's proximal term)
BATCHABLE = ("fedavg", "fedprox")


def batchable(algorithm: Algorithm | type[Algorithm]) -> bool:
    """FedAvg or FedProx themselves (a method or its class): a subclass may train
    differently."""
    from fedsim.algorithms.fedavg import FedAvg
    from fedsim.algorithms.fedprox import FedProx

    cls = algorithm if isinstance(algorithm, type) else type(algorithm)
    return cls in (FedAvg, FedProx)


def _orders(task: ClientTask, n: int, batch: int, epochs: int) -> list[torch.Tensor]:
    """The client's batches, in order: the draws of ``local_sgd`` from the task's seed."""
    gen = torch.Generator().manual_seed(task.seed)
    steps, bs = steps_per_epoch(n, batch), min(batch, n)
    out = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        out += [order[s * bs:(s + 1) * bs] for s in range(steps)]
    return out


def train_batched(algorithm: Algorithm, model: nn.Module, tasks: Sequence[ClientTask],
                  x: torch.Tensor, y: torch.Tensor) -> list[ClientUpdate]:
    """Local SGD of every task (same global model, same learning rate) at once."""
    hyper = algorithm.hyper
    mu = float(getattr(algorithm.params, "mu", 0.0))  # FedProx's proximal weight
    load_state(model, tasks[0].global_state)
    model.train()
    layers = _layers_of(model)
    k = len(tasks)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = stack_state(dict(model.named_parameters()), k)
    buffers = stack_state(dict(model.named_buffers()), k)
    momentum = {n: torch.zeros_like(p) for n, p in params.items()}
    started = torch.zeros(k, dtype=torch.bool)
    batches = []
    for t in tasks:
        idx = torch.as_tensor(t.indices, dtype=torch.long)
        batches.append((idx, _orders(t, len(idx), hyper.batch_size, hyper.local_epochs)))
    losses: list[list[float]] = [[] for _ in tasks]
    longest = max(len(o) for _, o in batches)
    for s in range(longest):
        # clients still training at this step, grouped by batch size (a tiny shard has a
        # smaller one): each group is one stacked step
        groups: dict[int, list[int]] = {}
        for i, (_, order) in enumerate(batches):
            if s < len(order):
                groups.setdefault(len(order[s]), []).append(i)
        for members in groups.values():
            rows = torch.cat([batches[i][0][batches[i][1][s]] for i in members])
            xb = x[rows].view(len(members), -1, *x.shape[1:])
            yb = y[rows].view(len(members), -1)
            whole = len(members) == k
            sel = torch.tensor(members)
            p = {n: (v if whole else v[sel]).detach().requires_grad_() for n, v in
                 params.items()}
            b = {n: v if whole else v[sel] for n, v in buffers.items()}
            ce = client_losses(forward(layers, p, b, xb), yb)
            loss = ce.sum()
            if mu > 0:
                loss = loss + 0.5 * mu * sum(
                    ((p[n] - anchor[n]) ** 2).flatten(1).sum(1).sum() for n in p)
            found = torch.autograd.grad(loss, list(p.values()), allow_unused=True)
            # a parameter the forward never used has no gradient: SGD skips it, as
            # torch.optim.SGD skips a parameter whose .grad is None
            grads = {n: g for n, g in zip(p, found, strict=True) if g is not None}
            for j, v in enumerate(ce.tolist()):
                losses[members[j]].append(v)
            _sgd(params, momentum, grads, sel, started, hyper, tasks[0].lr)
            if not whole:
                for n, v in b.items():
                    buffers[n][sel] = v
    keys = list(state_tensors(model))  # the sequential update's key order
    return [_update(t, i, params, buffers, keys, losses[i], len(batches[i][0]), algorithm)
            for i, t in enumerate(tasks)]


def _layers_of(model: nn.Module) -> list[Any]:
    """The model's stacked layers, built once per model."""
    layers = model.__dict__.get("_fedsim_stacked")
    if layers is None:
        layers = model.__dict__["_fedsim_stacked"] = compile_layers(model)
    return layers


def _sgd(params: dict[str, torch.Tensor], momentum: dict[str, torch.Tensor],
         grads: dict[str, torch.Tensor], sel: torch.Tensor, started: torch.Tensor,
         hyper: Any, lr: float) -> None:
    """torch.optim.SGD's rule and operations (weight decay, momentum whose first buffer is
    the gradient) on the stacked weights of the clients ``sel``."""
    whole = len(sel) == len(started) and bool(started.all() or not started.any())
    first = not bool(started[sel[0]]) if whole else None
    mask = ~started[sel]
    for n, g in grads.items():
        p = params[n] if whole else params[n][sel]
        d = g.add(p, alpha=hyper.weight_decay) if hyper.weight_decay else g
        if hyper.momentum:
            if whole:
                buf = momentum[n]
                if first:
                    buf.copy_(d)
                else:
                    buf.mul_(hyper.momentum).add_(d)
            else:
                old = momentum[n][sel]
                shape = (-1,) + (1,) * (d.dim() - 1)
                buf = torch.where(mask.view(shape), d, old.mul(hyper.momentum).add(d))
                momentum[n][sel] = buf
            d = buf
        if whole:
            p.add_(d, alpha=-lr)
        else:
            params[n][sel] = p.add(d, alpha=-lr)
    started[sel] = True


def _update(task: ClientTask, i: int, params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor], keys: list[str], losses: list[float],
            samples: int, algorithm: Algorithm) -> ClientUpdate:
    # Views of this call's own stacked tensors (nothing else writes to them): no copy per
    # client. They share storage with the other clients' states, so anything that saves
    # an update to disk copies it first (TrainingPort.export_tasks).
    state = {n: (params[n] if n in params else buffers[n])[i] for n in keys}
    return ClientUpdate(round=task.round, client_id=task.client_id, state=state,
                        bits_up=tuple([FLOAT_BITS] * algorithm.spec.n_quantized),
                        samples=samples, train_loss=sum(losses) / max(1, len(losses)))


class _BatchHandle:
    def __init__(self, ex: BatchingExecutor, task: ClientTask) -> None:
        self.ex, self.task = ex, task
        self.update: ClientUpdate | None = None
        self.cancelled = False

    def result(self) -> ClientUpdate:
        if self.update is None:
            assert not self.cancelled, "cancelled task has no result"
            self.ex.run_batch(self)
        assert self.update is not None
        return self.update

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class BatchingExecutor:
    """The inline executor, training up to ``k`` pending clients at once.

    Tasks wait until a result is asked for; then the chunk of pending tasks holding it is
    trained together (:meth:`run_batch`). Submission order is the engine's simulated-time
    order, so the grouping, and the run, are deterministic.
    """

    def __init__(self, setup: Any, k: int, train: Any = None) -> None:
        from fedsim.execution.worker import WorkerContext

        self.ctx = WorkerContext(setup, train)
        self.k = k
        self.pending: list[_BatchHandle] = []
        self.batches = 0  # vectorised steps run (tests, diagnostics)

    def submit(self, task: ClientTask) -> _BatchHandle:
        handle = _BatchHandle(self, task)
        self.pending.append(handle)
        return handle

    def run_batch(self, asked: _BatchHandle) -> None:
        """Train the chunk of ``k`` pending tasks that holds ``asked``: the pending tasks with
        its global model and learning rate, in submission order, cut into consecutive
        chunks of ``k``. Tasks after ``asked`` are trained early (a round asks for all of
        them but the few it cancels); the cut depends only on what was submitted and
        cancelled, so it is the same in every run."""
        self.pending = [h for h in self.pending if not h.cancelled and h.update is None]
        same = [h for h in self.pending if h.task.global_state is asked.task.global_state
                and h.task.lr == asked.task.lr]
        start = same.index(asked) // self.k * self.k
        chunk = same[start:start + self.k]
        ctx = self.ctx
        updates = train_batched(ctx.algorithm, ctx.model, [h.task for h in chunk], ctx.x,
                                ctx.y)
        for h, u in zip(chunk, updates, strict=True):
            h.update = u
        self.batches += 1
        self.pending = [h for h in self.pending if h.update is None]

    def shutdown(self) -> None:
        self.pending = []
