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
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from fedsim.algorithms.base import ClientTask, ClientUpdate
from fedsim.errors import InputError, RunError
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
                return self._fut.result()
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


class ProcessExecutor:
    """A pool of spawned workers; tasks start as soon as they are submitted.

    A worker that dies (killed, segfault, OOM) breaks the whole pool in
    ``concurrent.futures``; the executor then starts a new pool and every affected task is
    resubmitted, up to ``max_retries`` times.
    """

    max_retries = 2

    def __init__(self, setup: WorkerSetup, workers: int) -> None:
        self._setup = setup
        self._workers = workers
        self._generation = 0
        self.restarts = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=mp.get_context("spawn"),
            initializer=init_worker,
            initargs=(self._setup,),
        )

    def _submit(self, task: ClientTask) -> tuple[int, Future[ClientUpdate]]:
        try:
            return self._generation, self._pool.submit(run_task, task)
        except BrokenProcessPool:
            self._restart(self._generation)
            return self._generation, self._pool.submit(run_task, task)

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


def make_executor(kind: str, setup: WorkerSetup, workers: int, *,
                  ray_address: str | None = None, train: Any = None) -> Executor:
    """``train``: the run's already-loaded training set, reused by the inline executor."""
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
    return InlineExecutor(setup, train)
