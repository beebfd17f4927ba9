"""Repeated runs over seeds, and their summary (mean, std, min, max per round and at the end).

A single non-IID federated run is not a result: final accuracies swing by several points
between seeds. ``fedsim run SCENARIO --seeds 1-5`` runs the scenario once per seed into
``<parent>/s<seed>/`` and writes ``seeds_summary.csv`` / ``seeds_summary.json`` beside them.
Each seed's run is byte-identical to a single run with that seed.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from fedsim.errors import InputError

METRICS = ("accuracy", "sim_time_s", "energy_j")


def parse_seeds(text: str) -> list[int]:
    """``1-5`` or ``1,4,9`` (or a mix: ``1-3,7``) -> sorted unique seeds."""
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo or hi - lo > 10_000:
                    raise ValueError
                seeds.update(range(lo, hi + 1))
            elif part:
                seeds.add(int(part))
    except ValueError:
        raise InputError(f"expected seeds like 1-5 or 1,4,9; got '{text}'",
                         key="--seeds") from None
    if not seeds or min(seeds) < 0:
        raise InputError(f"expected non-negative seeds; got '{text}'", key="--seeds")
    return sorted(seeds)


def _one(args: tuple[str, list[str], Path, str]) -> str:
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import run_scenario

    path, overrides, parent, name = args
    loaded = load_scenario(path, overrides)
    return str(run_scenario(loaded, output=parent, run_name=name, progress=False,
                            overrides=overrides).path)


def run_seeds(path: Path, overrides: Sequence[str], seeds: Sequence[int], parent: Path,
              *, parallel: int = 1, progress: bool | None = None) -> list[Path]:
    """Run one scenario per seed into ``parent``; ``parallel`` seed runs at a time."""
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import run_scenario

    parent.mkdir(parents=True, exist_ok=True)
    jobs = [(str(path), [*overrides, f"seed={s}", "seeds=null"], parent, f"s{s}")
            for s in seeds]
    for _, ov, _, name in jobs:  # validate every variant before any training
        load_scenario(path, ov)
        if (parent / name).exists():
            raise InputError(f"{parent / name} exists already; choose another --output",
                             key="--output")
    if parallel > 1 and len(jobs) > 1:
        # whole runs in parallel (each inline: the same numerics as a single run)
        jobs = [(p, [*ov, "execution.workers=1", "execution.executor=inline"], par, n)
                for p, ov, par, n in jobs]
        with ProcessPoolExecutor(max_workers=min(parallel, len(jobs)),
                                 mp_context=get_context("spawn")) as pool:
            paths = [Path(p) for p in pool.map(_one, jobs)]
    else:
        paths = []
        for p, ov, par, n in jobs:
            loaded = load_scenario(p, ov)
            paths.append(run_scenario(loaded, output=par, run_name=n, progress=progress,
                                      overrides=ov).path)
    write_summary(parent, paths)
    return paths


def stats(xs: list[float]) -> dict[str, float]:
    """Mean, std, min, max; NaN throughout when no seed has a number (a system-only run
    records no accuracy)."""
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return dict.fromkeys(("mean", "std", "min", "max"), math.nan)
    return {
        "mean": statistics.fmean(xs),
        "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "min": min(xs),
        "max": max(xs),
    }


def write_summary(parent: Path, runs: Sequence[Path]) -> dict[str, Any]:
    """``seeds_summary.csv`` (per round) and ``seeds_summary.json`` (per round and final)."""
    from fedsim.records.reader import read_mapping, read_rows
    from fedsim.records.schema import ROUNDS

    per_run = [read_rows(r / "rounds.csv", ROUNDS) for r in runs]
    n_rounds = min(len(rows) for rows in per_run) if per_run else 0
    table = []
    for i in range(n_rounds):
        row: dict[str, Any] = {"round": int(per_run[0][i]["round"]), "seeds": len(runs)}
        for m in METRICS:
            st = stats([float(rows[i][m]) for rows in per_run])  # NaN stays NaN
            row.update({f"{m}_{k}": v for k, v in st.items()})
        table.append(row)
    finals = [read_mapping(r / "summary.json", "the run's summary") for r in runs]
    final = {
        "final_accuracy": stats([f["final_accuracy"] for f in finals
                                  if f["final_accuracy"] is not None] or [math.nan]),
        "best_accuracy": stats([f["best_accuracy"] for f in finals
                                 if f["best_accuracy"] is not None] or [math.nan]),
        "sim_time_s": stats([f["sim_time_s"] for f in finals]),
        "energy_j": stats([f["energy_j"] for f in finals]),
    }
    doc = {"runs": [r.name for r in runs], "seeds": [f["seed"] for f in finals],
           "final": final, "rounds": table}
    (parent / "seeds_summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    if table:
        with (parent / "seeds_summary.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(table)
    return doc
