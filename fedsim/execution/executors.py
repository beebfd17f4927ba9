"""Executors: where client training runs. They change host time, never results.

* ``inline``: in this process, lazily — a task runs when the engine asks for its result,
  so a task whose result is never needed never costs host time.
* ``process``: a pool of ``spawn``-started worker processes (forking a parent whose torch
  thread pool is live can hang), each initialised once with the dataset.
* ``ray``: Ray actors on a local or existing cluster (optional extra, see ``ray_executor``).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Protocol

from fedsim.algorithms.base import ClientTask, ClientUpdate
from fedsim.errors import InputError
from fedsim.execution.worker import WorkerContext, WorkerSetup, init_worker, run_task


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

    def __init__(self, setup: WorkerSetup) -> None:
        self._ctx = WorkerContext(setup)

    def submit(self, task: ClientTask) -> Handle:
        return _LazyHandle(self._ctx, task)

    def shutdown(self) -> None:
        pass


class ProcessExecutor:
    """A pool of spawned workers; tasks start as soon as they are submitted."""

    def __init__(self, setup: WorkerSetup, workers: int) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=init_worker,
            initargs=(setup,),
        )

    def submit(self, task: ClientTask) -> Handle:
        fut: Future[ClientUpdate] = self._pool.submit(run_task, task)
        return fut

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(kind: str, setup: WorkerSetup, workers: int, *,
                  ray_address: str | None = None) -> Executor:
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
        return ProcessExecutor(setup, workers)
    return InlineExecutor(setup)
