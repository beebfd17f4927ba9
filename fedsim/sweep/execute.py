"""Running a sweep: one ``fedsim run`` process per (cell, seed), ``workers`` at a time.

Separate processes make each run byte-identical to running it alone and keep a crash in one
run from taking the others down. The sweep folder's ``sweep.json`` records the plan; run
the same command again after a kill and finished runs are kept, unfinished ones (their
hidden ``.partial`` folders) are removed and run again. Children die with the sweep
(``PR_SET_PDEATHSIG``), so a killed sweep leaves no orphan still writing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.errors import InputError, RunError
from fedsim.execution.lifetime import die_with_parent
from fedsim.records.reader import run_files_present
from fedsim.records.schema import RUN_FILES
from fedsim.sweep.grid import Cell


@dataclass(frozen=True)
class Job:
    cell: Cell
    seed: int

    @property
    def name(self) -> str:
        return f"{self.cell.name}-s{self.seed}"


def plan_document(scenario: Path, base: Sequence[str], cells: Sequence[Cell],
                  seeds: Sequence[int]) -> dict[str, Any]:
    return {
        "scenario": str(scenario.resolve()),
        "overrides": list(base),
        "seeds": list(seeds),
        "cells": [{"cell": c.name, "label": c.label, "overrides": c.overrides} for c in cells],
    }


def open_sweep(folder: Path, plan: dict[str, Any]) -> None:
    """Create the sweep folder, or reopen it for the same plan (anything else: exit 2)."""
    doc = folder / "sweep.json"
    if doc.exists():
        try:
            old = json.loads(doc.read_text(encoding="utf-8")).get("plan")
        except (OSError, json.JSONDecodeError):
            old = None
        if old != plan:
            raise InputError("this folder holds a different sweep (other scenario, grid, "
                             "seeds or overrides); choose another --name or --output",
                             file=folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    doc.write_text(json.dumps({"plan": plan}, indent=2) + "\n", encoding="utf-8")


def pending(folder: Path, jobs: Sequence[Job]) -> list[Job]:
    """Jobs whose run folder is not complete; their half-written folders are removed."""
    todo = []
    for job in jobs:
        run = folder / job.name
        if run.is_dir() and len(run_files_present(run)) == len(RUN_FILES):
            continue
        shutil.rmtree(folder / f".{job.name}.partial", ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        todo.append(job)
    return todo


def _command(scenario: Path, base: Sequence[str], folder: Path, job: Job) -> list[str]:
    return [sys.executable, "-m", "fedsim.cli", "run", str(scenario), "-o", str(folder),
            "--name", job.name, "--no-progress",
            *[a for o in [*base, *job.cell.overrides, f"seed={job.seed}", "seeds=null"]
              for a in ("--set", o)]]


def _run_command(cmd: list[str]) -> tuple[int, str]:
    """Run one ``fedsim run``; its exit status and last error line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent,
                          check=False)
    return proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1]


def run_jobs(scenario: Path, base: Sequence[str], folder: Path, jobs: Sequence[Job],
             workers: int, on_done: Callable[[Job, int, str], None], *,
             executor: str = "process", ray_address: str | None = None
             ) -> list[tuple[Job, str]]:
    """Run ``jobs`` (``workers`` at a time, or as Ray tasks); the failed ones with their
    last error line."""
    failed: list[tuple[Job, str]] = []
    lock = threading.Lock()

    def finish(job: Job, rc: int, err: str) -> None:
        with lock:
            if rc != 0:
                failed.append((job, err or f"exit status {rc}"))
            on_done(job, rc, err)

    if executor == "ray":
        _run_on_ray(scenario, base, folder, jobs, workers, finish, ray_address)
        return failed
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(lambda j: finish(j, *_run_command(
            _command(scenario, base, folder, j))), j) for j in jobs]
        for f in futures:
            f.result()
    return failed


def _run_on_ray(scenario: Path, base: Sequence[str], folder: Path, jobs: Sequence[Job],
                workers: int, finish: Callable[[Job, int, str], None],
                address: str | None) -> None:
    """One Ray task (one CPU) per run: on this machine, or on the cluster at ``address``
    (its nodes need the scenario and the sweep folder at the same paths)."""
    try:
        import ray

        from fedsim.execution.ray_executor import connect
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'fedsim[ray]'",
                         key="--executor") from None
    started = connect(address, cpus=workers)
    try:
        task = ray.remote(num_cpus=1)(_run_command)
        refs = {task.remote(_command(scenario, base, folder, j)): j for j in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(done[0])
            finish(job, *ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()


def raise_if_failed(failed: Sequence[tuple[Job, str]]) -> None:
    if failed:
        lines = "; ".join(f"{j.name} ({j.cell.label}, seed {j.seed}): {e}"
                          for j, e in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise RunError(f"{len(failed)} sweep run(s) failed: {lines}{more}; run the same "
                       "command again to retry them (finished runs are kept)")
