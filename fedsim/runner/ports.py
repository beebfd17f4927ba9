"""The trainer port: where the engine meets real training.

The engine hands over work items (ids, bits, seed) and gets handles whose results are plain
:class:`~fedsim.engine.types.WorkResult` records; the model states stay here, keyed by task,
until the engine says which tasks to aggregate. The algorithm's server side runs here, its
client side on the executor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fedsim.engine.types import EvalResult, WorkItem, WorkResult
from fedsim.errors import RunError


# ---------------------------------------------------------------------------------------------
# Trainer port: the engine's door to real training
# ---------------------------------------------------------------------------------------------
class _ResultHandle:
    """Turns an executor handle of a ClientUpdate into the engine's WorkResult."""

    def __init__(self, port: TrainingPort, item: WorkItem, handle: Any) -> None:
        self._port, self._item, self._handle = port, item, handle
        self._result: WorkResult | None = None

    def result(self) -> WorkResult:
        if self._result is None:
            if self._port.on_wait is not None:
                self._port.on_wait()  # the host would idle here: finish held work first
            try:
                update = self._handle.result()
            except Exception as exc:  # a worker error becomes a clear run error
                raise RunError(
                    f"client {self._item.client_id} failed in round {self._item.round}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._port._updates[self._item.key] = update
            self._result = WorkResult(
                round=update.round,
                client_id=update.client_id,
                bits_up=tuple(update.bits_up),
                samples=update.samples,
                train_loss=update.train_loss,
                metrics=dict(update.metrics),
            )
        return self._result

    def cancel(self) -> bool:
        return bool(self._handle.cancel())


class TrainingPort:
    """Real training behind the engine: algorithm server side here, client side on workers."""

    def __init__(self, algorithm: Any, executor: Any, partitions: Sequence[np.ndarray],
                 evaluator: Any, *, server_lr: float = 1.0, staleness_fn: str = "sqrt") -> None:
        self.algorithm = algorithm
        self.executor = executor
        self.partitions = partitions
        self.evaluator = evaluator
        self._handles: dict[tuple[int, int, int], _ResultHandle] = {}
        self._updates: dict[tuple[int, int, int], Any] = {}
        self._bases: dict[tuple[int, int, int], Any] = {}
        self.server_lr = server_lr  # FedBuff's server step and staleness weighting
        self.staleness_fn = staleness_fn
        self.on_wait: Callable[[], None] | None = None  # set: evaluation is deferred

    def defer_evaluation(self, on_wait: Callable[[], None]) -> None:
        """Evaluate each round's model later, when the host would otherwise wait.

        Why: with training in worker processes, the run's own process sits idle while the
        workers train, yet it evaluated each new global model before the next round could
        start, and the workers waited for that. Here ``evaluate`` returns a pending result
        (the model to test); the engine's observer holds the round's records
        until it is in (``RunRecorder.hold``), and ``on_wait`` (that observer's ``drain``)
        runs just before the host first waits on a worker in the next round, by when
        the workers are busy with that round. The numbers and the files are the same.
        """
        self.on_wait = on_wait

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return self.algorithm.downlink_bits(round, client_ids)

    def set_budget(self, client_id: int, budget_bits: float) -> None:
        """A client's new budget (battery-adaptive budgets), seen by the method from now on."""
        info = self.algorithm.clients[client_id]
        self.algorithm.clients[client_id] = replace(info, budget_bits=budget_bits)

    def submit(self, item: WorkItem) -> _ResultHandle:
        from fedsim.algorithms.base import ClientTask

        task = ClientTask(
            round=item.round,
            client_id=item.client_id,
            bits=item.bits,
            seed=item.seed,
            lr=self.algorithm.hyper.lr_at(item.round),
            indices=self.partitions[item.client_id],
            global_state=self.algorithm.global_state,
            budget_bits=self.algorithm.clients[item.client_id].budget_bits,
        )
        handle = _ResultHandle(self, item, self.executor.submit(task))
        self._handles[item.key] = handle
        self._bases[item.key] = task.global_state
        return handle

    def discard(self, key: tuple[int, int, int]) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._updates.pop(key, None)
        self._bases.pop(key, None)

    def aggregate(self, round: int, keys: Sequence[tuple[int, int, int]]) -> None:
        updates = [self._take(k) for k in keys]
        self.algorithm.aggregate(round, updates)

    def aggregate_async(self, round: int, keys: Sequence[tuple[int, int, int]],
                        staleness: Sequence[int]) -> None:
        bases = [self._bases[k] for k in keys]
        updates = [self._take(k) for k in keys]
        self.algorithm.aggregate_async(round, updates, bases, staleness,
                                       server_lr=self.server_lr, weighting=self.staleness_fn)

    def _take(self, key: tuple[int, int, int]) -> Any:
        self._handles.pop(key, None)
        self._bases.pop(key, None)
        return self._updates.pop(key)

    def evaluate(self, round: int) -> EvalResult | _PendingEval:
        state = self.algorithm.eval_state()
        if self.on_wait is None:
            return self.evaluator(state)
        # a global state is replaced at each aggregation, never changed in place (the
        # recorder's checkpoint capture counts on the same): its tensors can wait as they are
        return _PendingEval(self.evaluator, dict(state))

    # -- async resume (fedsim.runner.replay) -------------------------------------------------
    def export_tasks(self, keys: Sequence[tuple[int, int, int]]) -> dict[Any, dict[str, Any]]:
        """Open tasks' updates and base models as plain values and tensors (checkpoint)."""
        out = {}
        for key in keys:
            u = self._updates[key]
            out[key] = {"update": {"round": u.round, "client_id": u.client_id,
                                   # own copies: a batched update's tensors are views of
                                   # its whole batch's, which torch.save would write whole
                                   "state": {k: v.clone() for k, v in u.state.items()},
                                   "bits_up": list(u.bits_up),
                                   "samples": u.samples, "train_loss": u.train_loss,
                                   "client_state": u.client_state,
                                   "metrics": dict(u.metrics)},
                        "base": self._bases[key]}
        return out

    def import_tasks(self, tasks: dict[Any, dict[str, Any]]) -> None:
        """Take back :meth:`export_tasks`' tasks (a resumed async run going live)."""
        from fedsim.algorithms.base import ClientUpdate

        for key, t in tasks.items():
            u = dict(t["update"])
            u["bits_up"] = tuple(u["bits_up"])
            self._updates[key] = ClientUpdate(**u)
            self._bases[key] = t["base"]


class _PendingEval:
    """A global model's test, run on first ``result()`` (``TrainingPort.defer_evaluation``)."""

    def __init__(self, evaluator: Any, state: dict[str, Any]) -> None:
        self._evaluator = evaluator
        self._state: dict[str, Any] | None = state
        self._result: EvalResult | None = None

    def result(self) -> EvalResult:
        if self._result is None:
            assert self._state is not None
            self._result = self._evaluator(self._state)
            self._state = None
        return self._result


class Evaluator:
    """Tests a float state on the test split in eval mode (docs/algorithm.md section 8)."""

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        import copy

        import torch

        self.model = copy.deepcopy(model)
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)
        self.batch_size = batch_size

    def __call__(self, state: dict[str, Any]) -> EvalResult:
        import torch
        from torch.nn import functional as F

        self.model.load_state_dict(state)
        self.model.eval()
        correct, loss_sum, n = 0, 0.0, int(self.x.shape[0])
        with torch.no_grad():
            for i in range(0, n, self.batch_size):
                xb, yb = self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]
                out = self.model(xb)
                loss_sum += float(F.cross_entropy(out, yb, reduction="sum"))
                correct += int((out.argmax(1) == yb).sum())
        return EvalResult(accuracy=correct / max(1, n), loss=loss_sum / max(1, n))
