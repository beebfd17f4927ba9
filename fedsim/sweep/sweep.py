"""A sweep from start to finish: check the grid, (re)open the folder, run what is missing,
summarise, draw the page."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from fedsim.sweep.execute import (
    Job,
    open_sweep,
    pending,
    plan_document,
    raise_if_failed,
    run_jobs,
)
from fedsim.sweep.grid import cells_of, check_cells, parse_grid
from fedsim.sweep.page import write_page
from fedsim.sweep.summary import cell_stats, write_table


def run_sweep(scenario: Path, grid: Sequence[str], seeds: Sequence[int], base: Sequence[str],
              folder: Path, *, workers: int = 1, executor: str = "process",
              ray_address: str | None = None, echo: Callable[[str], None] = print) -> Path:
    """Run every (cell, seed) not yet done into ``folder``; the sweep page's path."""
    cells = cells_of(parse_grid(grid))
    check_cells(scenario, base, cells, seeds)
    plan = plan_document(scenario, base, cells, seeds)
    open_sweep(folder, plan)
    jobs = [Job(c, s) for c in cells for s in seeds]
    todo = pending(folder, jobs)
    done = [len(jobs) - len(todo)]
    echo(f"sweep {folder}: {len(cells)} cells x {len(seeds)} seeds = {len(jobs)} runs"
         + (f" ({done[0]} already done)" if done[0] else ""))

    def report(job: Job, rc: int, err: str) -> None:
        done[0] += 1
        state = "ok" if rc == 0 else f"FAILED: {err}"
        echo(f"[{done[0]}/{len(jobs)}] {job.name} ({job.cell.label}, seed {job.seed}): {state}")

    raise_if_failed(run_jobs(scenario, base, folder, todo, workers, report,
                             executor=executor, ray_address=ray_address))
    stats = cell_stats(folder, cells, jobs)
    rows = write_table(stats, folder / "sweep.csv")
    (folder / "sweep.json").write_text(json.dumps({"plan": plan, "cells": rows}, indent=2)
                                       + "\n", encoding="utf-8")
    return write_page(folder, stats, f"fedsim sweep: {scenario.stem}")
