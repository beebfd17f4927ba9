"""Executors: where client training runs. They change host time, never results.

* ``inline``: in this process, lazily — a task runs when the engine asks for its result,
  so a task whose result is never needed never costs host time.
* ``process``: a pool of worker processes, each initialised once with the dataset. With one
  torch thread per worker on the CPU (the default) they are forked: a worker starts in
  milliseconds with torch imported and the training set already in memory. Otherwise they
  are ``spawn``-started (forking a parent whose OpenMP thread pool is live hangs the first
  multi-threaded operation of the child), which costs a fresh interpreter, ``import torch``
  and a dataset load each.
* ``ray``: Ray actors on a local or existing cluster (optional extra, see ``ray_executor``).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from fedsim.algorithms.base import ClientTask, ClientUpdate
from fedsim.errors import InputError, RunError
from fedsim.execution.worker import (
    WorkerContext,
    WorkerSetup,
    init_worker,
    leave_for_forked_workers,
    pack,
    run_task,
    unpack,
)


class Handle(Protocol):
    def result(self) -> ClientUpdate: ...

    def cancel(self) -> bool: ...


class Executor(Protocol):
    def submit(self, task: ClientTask) -> Handle: ...

    def shutdown(self) -> None: ...


class _LazyHandle:
    def __init__(self, ctx: WorkerContext, task: ClientTask) -> None:
        self._ctx = ctx
        self._task: ClientTask | None = task
        self._result: ClientUpdate | None = None

    def result(self) -> ClientUpdate:
        if self._result is None:
            assert self._task is not None, "cancelled task has no result"
            self._result = self._ctx.run(self._task)
            self._task = None
        return self._result

    def cancel(self) -> bool:
        self._task = None
        return True


class InlineExecutor:
    """Runs tasks in this process on first ``result()``."""

    def __init__(self, setup: WorkerSetup, train: Any = None) -> None:
        self._ctx = WorkerContext(setup, train)

    def submit(self, task: ClientTask) -> Handle:
        return _LazyHandle(self._ctx, task)

    def shutdown(self) -> None:
        pass


class _PoolHandle:
    """A task's future that survives its worker dying: the pool is rebuilt and the task
    resubmitted (a task is a pure function of its inputs, so the result is the same)."""

    def __init__(self, ex: ProcessExecutor, task: ClientTask) -> None:
        self._ex = ex
        self._task = task
        self._gen, self._fut = ex._submit(task)
        self._retries = 0

    def result(self) -> ClientUpdate:
        while True:
            try:
                return unpack(self._fut.result())
            except BrokenProcessPool:
                if self._retries >= self._ex.max_retries:
                    raise RunError(
                        f"client {self._task.client_id}, round {self._task.round}: its worker "
                        f"process died {self._retries + 1} times (killed, out of memory or "
                        "crashed); giving up"
                    ) from None
                self._retries += 1
                self._ex._restart(self._gen)
                self._gen, self._fut = self._ex._submit(self._task)
            except RunError:
                raise
            except Exception as exc:
                # An exception inside the task: retry (a transient fault), then fail clearly.
                if self._retries >= self._ex.max_retries:
                    raise RunError(
                        f"client {self._task.client_id}, round {self._task.round} failed "
                        f"{self._retries + 1} times: {type(exc).__name__}: {exc}"
                    ) from exc
                self._retries += 1
                self._gen, self._fut = self._ex._submit(self._task)

    def cancel(self) -> bool:
        return self._fut.cancel()


def start_method(setup: WorkerSetup) -> str:
    """``fork`` where it is safe and fast (one torch thread per worker, CPU), else ``spawn``.

    Why not always fork: GNU OpenMP keeps its thread pool across ``fork`` in a broken state,
    so a child's first multi-threaded operation waits forever once the parent has run one
    (checked on this torch build); one thread never enters OpenMP. CUDA cannot be used in a
    child forked after the parent touched it. ``FEDSIM_START_METHOD`` overrides (tests).
    """
    import os
    import sys

    forced = os.environ.get("FEDSIM_START_METHOD")
    if forced in ("fork", "spawn", "forkserver"):
        return forced
    linux = sys.platform.startswith("linux")  # macOS: forking after Objective-C is unsafe
    return "fork" if linux and setup.threads == 1 and setup.device == "cpu" else "spawn"


class ProcessExecutor:
    """A pool of worker processes (:func:`start_method`); tasks start when submitted.

    A worker that dies (killed, segfault, OOM) breaks the whole pool in
    ``concurrent.futures``; the executor then starts a new pool and every affected task is
    resubmitted, up to ``max_retries`` times.
    """

    max_retries = 2

    def __init__(self, setup: WorkerSetup, workers: int, train: Any = None) -> None:
        self._setup = setup
        self._workers = workers
        self._generation = 0
        self.restarts = 0
        self.start_method = start_method(setup)
        if self.start_method == "fork" and train is not None:
            leave_for_forked_workers(setup, train)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=mp.get_context(self.start_method),
            initializer=init_worker,
            initargs=(self._setup,),
        )

    def _submit(self, task: ClientTask) -> tuple[int, Future[Any]]:
        try:
            return self._generation, self._pool.submit(run_task, pack(task))
        except BrokenProcessPool:
            self._restart(self._generation)
            return self._generation, self._pool.submit(run_task, pack(task))

    def _restart(self, generation: int) -> None:
        if generation != self._generation:
            return  # another handle already replaced the broken pool
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self._generation += 1
        self.restarts += 1

    def submit(self, task: ClientTask) -> Handle:
        return _PoolHandle(self, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        leave_for_forked_workers(None, None)  # the next run's workers get their own


def make_executor(kind: str, setup: WorkerSetup, workers: int, *,
                  ray_address: str | None = None, train: Any = None,
                  batch_clients: int = 1) -> Executor:
    """``train``: the run's already-loaded training set, reused by the inline executor and
    by forked workers; ``batch_clients`` > 1: the inline executor trains that many clients
    at once (``execution.batched``)."""
    if kind == "ray":  # optional extra, imported only when asked for
        try:
            from fedsim.execution.ray_executor import RayExecutor
        except ImportError as exc:
            if (exc.name or "").split(".")[0] != "ray":
                raise
            raise InputError(
                "the Ray executor needs Ray, which is not installed: pip install 'fedsim[ray]'",
                key="execution.executor",
            ) from None
        return RayExecutor(setup, workers, address=ray_address)
    if kind == "process" or workers > 1:
        return ProcessExecutor(setup, workers, train)
    if batch_clients > 1:
        from fedsim.execution.batched import BatchingExecutor

        return BatchingExecutor(setup, batch_clients, train)  # type: ignore[return-value]
    return InlineExecutor(setup, train)
