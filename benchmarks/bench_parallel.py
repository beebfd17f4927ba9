"""Parallel speed-up: workload 1 with 1 worker versus 2 workers (and Ray), same results.

Workload 1 of ``bench_overhead.py`` (10 clients x 5 rounds x 1 epoch, small CNN, synthetic
28x28x1, 500 samples per client, batch 32) run by fedsim with:

* ``--workers 1``: the inline executor (the baseline);
* ``--workers 2``: the process pool (2 workers forked from the run, with the training set
  already in memory; the run tests round r while they train round r+1);
* ``--executor ray --workers 2`` (with ``--ray``, when Ray is installed): 2 Ray actors on a
  private local Ray instance started by the run.

Every run uses ``execution.threads: 1`` (one torch thread in the main process and in each
worker). Each repetition of each variant runs in a fresh child process, in alternating
order; figures are medians. Besides wall time the script reports the mean time of rounds
2..R ("later rounds"), where the one-off start of workers (process spawn, ``import torch``,
dataset load) is gone: that is the speed-up a longer run approaches. It also checks that
rounds.csv, clients.csv, bits.csv and events.jsonl are byte-identical across executors.

Targets (issue "many clients per round, fast"): with 2 workers, >= 1.8x one worker on the
later rounds and >= 1.3x on the whole 5-round run, identical results.

Usage::

    python benchmarks/bench_parallel.py                   # 3 repetitions, workload 1
    python benchmarks/bench_parallel.py --ray             # also 2 Ray actors
    python benchmarks/bench_parallel.py --rounds 20       # a longer run amortises the start
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_overhead import (  # noqa: E402
    FILES,
    HEADER,
    busy_warning,
    files_identical,
    row,
    run_child,
    summarise,
    workload_args,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    workload_args(p)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--ray", action="store_true", help="also run 2 Ray actors")
    a = p.parse_args()
    warn = busy_warning()
    if warn:
        print(f"WARNING: other fedsim runs are active, timings are not valid: {warn}")
    print(f"workload: {a.clients} clients x {a.rounds} rounds x {a.epochs} epoch(s), "
          f"{a.samples} samples/client, batch {a.batch}, threads {a.threads} per process, "
          f"{a.reps} repetition(s)")
    overhead = str(HERE / "bench_overhead.py")
    variants: dict[str, list[str]] = {
        "fedsim --workers 1 (inline)": [],
        "fedsim --workers 2 (process pool)": ["--workers", "2", "--executor", "process"],
    }
    if a.ray:
        if importlib.util.find_spec("ray") is None:
            print("Ray is not installed (pip install 'fedsim[ray]'): skipping the Ray variant")
        else:
            variants["fedsim --executor ray --workers 2"] = ["--workers", "2",
                                                             "--executor", "ray"]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="fedsim-bench-") as tmp:
        for rep in range(a.reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for i, v in enumerate(order):
                runs[v].append(run_child(overhead, "fedsim", a, Path(tmp), f"r{rep}v{i}",
                                         variants[v]))
                print(f"  rep {rep} {v:36s} wall {runs[v][-1]['wall_s']:.2f} s", flush=True)
        base = runs["fedsim --workers 1 (inline)"][0]["path"]
        same = {k: all(files_identical(base, r["path"]) for r in v) for k, v in runs.items()}
    s = {k: summarise(v) for k, v in runs.items()}
    one = s["fedsim --workers 1 (inline)"]
    print()
    print(HEADER)
    for k in variants:
        print(row(k, s[k]))
    print()
    for k in list(variants)[1:]:
        speed = one["wall_s"] / s[k]["wall_s"]
        steady = one["steady_s"] / s[k]["steady_s"]
        print(f"{k}: speed-up wall {speed:.2f}x (target >= 1.3x: "
              f"{'met' if speed >= 1.3 else 'NOT met'}), later rounds {steady:.2f}x (target "
              f">= 1.8x: {'met' if steady >= 1.8 else 'NOT met'}); "
              f"{', '.join(FILES)} identical to 1 worker: {'yes' if same[k] else 'NO'}")
        start = statistics.median(r["round_s"][0] for r in runs[k]) - one["first_round_s"]
        print(f"    round 1 takes {start:+.2f} s against 1 worker (worker start included)")
    if warn:
        print("WARNING: the machine was busy; rerun on a quiet machine.")


if __name__ == "__main__":
    main()
