"""Ray executor: client training as tasks on Ray actors, on this machine or on a cluster.

Why actors and not plain tasks: a worker must load the dataset once and keep one model and
one algorithm object between tasks (the same contract as the process pool's initializer).
Each actor holds a :class:`~fedsim.execution.worker.WorkerContext`; a client update is one
method call on the least-busy actor. The actor sets the same torch thread count as every
other executor (``execution.threads``) and reserves that many CPUs from Ray, so the low bits
of every result, and therefore the run's files, are identical to the inline executor's.

Where it runs (first match wins):

1. an already initialised Ray in this process (e.g. a test or a notebook called
   ``ray.init``): used as it is and left running at shutdown;
2. the ``address`` argument (scenario ``execution.ray_address``), else the environment
   variable ``FEDSIM_RAY_ADDRESS``, else Ray's own ``RAY_ADDRESS``: ``ray.init(address=...)``
   connects to that cluster (``"auto"`` finds one started with ``ray start`` on this node);
3. otherwise a private local Ray instance with ``workers * threads`` CPUs (at least this
   machine's count), stopped at shutdown.

The global model of a round is put into Ray's object store once and shared by every task
of that round (on a cluster each node fetches it once), not pickled once per client.

Ray is an optional extra (``pip install 'fedsim[ray]'``): this module imports it at the top,
and :func:`fedsim.execution.executors.make_executor` imports this module only for
``executor: ray``, turning a missing Ray into an :class:`~fedsim.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import ray  # optional extra: make_executor turns its absence into an InputError
import ray.exceptions

from fedsim.algorithms.base import ClientTask, ClientUpdate
from fedsim.errors import InputError, RunError
from fedsim.execution.worker import WorkerContext, WorkerSetup

#: Environment variable naming the Ray cluster to join (overridden by the scenario's address).
ADDRESS_ENV = "FEDSIM_RAY_ADDRESS"


class _RayWorker:
    """Body of one Ray actor: a worker context built once, then one task at a time."""

    contexts_built = 0  # per actor process: stays 1 (the dataset is loaded once)

    def __init__(self, setup: WorkerSetup) -> None:
        self._ctx = WorkerContext(setup)
        type(self).contexts_built += 1
        self._tasks = 0

    def run(self, task: ClientTask, global_state: Any) -> ClientUpdate:
        # ``global_state`` arrives as a top-level argument, so Ray has already resolved the
        # shared object-store reference into tensors here.
        self._tasks += 1
        return self._ctx.run(dataclasses.replace(task, global_state=global_state))

    def ready(self) -> bool:
        return True

    def stats(self) -> dict[str, int]:
        """What this actor did (tests and diagnostics)."""
        import torch

        return {"pid": os.getpid(), "tasks": self._tasks, "contexts": self.contexts_built,
                "threads": torch.get_num_threads()}


class _RayHandle:
    """The port's view of one submitted task: ``result()`` and ``cancel()``.

    A task whose actor died (killed, out of memory) is resubmitted to a fresh actor, up to
    ``max_retries`` times, as the process pool does: a task is a pure function of its
    inputs, so the result is the same."""

    def __init__(self, ex: RayExecutor, task: ClientTask, sent: tuple[int, Any, Any]) -> None:
        self._ex, self._task = ex, task
        self._slot, self._actor, self._ref = sent
        self._retries = 0

    def result(self) -> ClientUpdate:
        while True:
            try:
                return ray.get(self._ref)  # type: ignore[no-any-return]
            except ray.exceptions.RayActorError:
                what = "its Ray worker died"
                self._ex._replace(self._slot, self._actor)
            except ray.exceptions.RayTaskError as exc:  # raised inside the task
                what = f"{type(exc.cause).__name__}: {exc.cause}"
            if self._retries >= self._ex.max_retries:
                raise RunError(f"client {self._task.client_id}, round {self._task.round}: "
                               f"{what} ({self._retries + 1} attempts); giving up")
            self._retries += 1
            self._slot, self._actor, self._ref = self._ex._send(self._task)

    def cancel(self) -> bool:
        try:
            ray.cancel(self._ref)
        except Exception:  # a finished or running actor task may refuse; nothing to undo
            return False
        return True


def connect(address: str | None, *, cpus: int) -> bool:
    """Make sure Ray is initialised; True when this call started it (and so must stop it)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get(ADDRESS_ENV) or os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, cpus), include_dashboard=False,
                     log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError(
            f"cannot start or join Ray at {address or 'a new local instance'}: {exc}",
            key="execution.ray_address",
        ) from None
    return True


class RayExecutor:
    """``workers`` Ray actors, each with its own dataset copy, model and algorithm."""

    def __init__(self, setup: WorkerSetup, workers: int, *, address: str | None = None) -> None:
        self._owns_ray = connect(address, cpus=workers * setup.threads)
        self._state_obj: Any = None
        self._state_ref: Any = None
        # CPU training reserves ``threads`` CPUs per actor; CUDA training one GPU per actor
        # (Ray hides every GPU from an actor that reserved none).
        gpus = 1 if setup.device == "cuda" else 0
        self._setup = setup
        self._actor_cls = ray.remote(num_cpus=setup.threads, num_gpus=gpus,
                                     max_restarts=0)(_RayWorker)
        self._actors = [self._actor_cls.remote(setup) for _ in range(workers)]
        # Surface a worker that cannot build its context (e.g. dataset files missing on a
        # node) now, as one clear error, rather than at the first client's result.
        try:
            ray.get([a.ready.remote() for a in self._actors])
        except Exception as exc:
            self.shutdown()
            raise RunError(f"a Ray worker could not start: {type(exc).__name__}: {exc}") from exc
        self._pending: list[list[Any]] = [[] for _ in self._actors]

    def _shared_state(self, state: Any) -> Any:
        """One object-store copy per global model (the algorithm makes a new dict per round)."""
        if state is not self._state_obj:
            self._state_obj, self._state_ref = state, ray.put(state)
        return self._state_ref

    def _least_busy(self) -> int:
        for i, refs in enumerate(self._pending):
            if refs:
                _done, self._pending[i] = ray.wait(refs, num_returns=len(refs), timeout=0)
        return min(range(len(self._actors)), key=lambda i: len(self._pending[i]))

    max_retries = 2

    def submit(self, task: ClientTask) -> _RayHandle:
        return _RayHandle(self, task, self._send(task))

    def _send(self, task: ClientTask) -> tuple[int, Any, Any]:
        i = self._least_busy()
        light = dataclasses.replace(task, global_state={})
        actor = self._actors[i]
        ref = actor.run.remote(light, self._shared_state(task.global_state))
        self._pending[i].append(ref)
        return i, actor, ref

    def _replace(self, i: int, dead: Any) -> None:
        """A fresh actor in place of a dead one (its dataset loaded again); a no-op when
        another task that ran on the same actor replaced it already."""
        if self._actors[i] is not dead:
            return
        with contextlib.suppress(Exception):  # already gone
            ray.kill(dead)
        self._actors[i] = self._actor_cls.remote(self._setup)
        self._pending[i] = []
        ray.get(self._actors[i].ready.remote())

    def shutdown(self) -> None:
        for a in self._actors:
            ray.kill(a)
        self._actors = []
        self._state_obj = self._state_ref = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
