"""Quantized training cost: a whole FedMPQ round versus a whole FP32 (FedAvg) round.

``bench_quant_step.py`` times one training step alone; this script times what a user pays:
fedsim rounds end to end (client updates, aggregation, FedMPQ's bit statistics and
pruning-growing, evaluation, records), on ResNet-20 with batch 128, in two variants that
differ only in the algorithm block:

* ``fp32``: ``fedavg``, lr 0.05, momentum 0.9, weight decay 5e-4;
* ``fedmpq``: ``fedmpq`` with the Fashion scenario's settings (plane lr 0.25, float lr
  0.01, lambda 1e-3, epsilon 0.02, 4-bit activations); every client has an 8-bit budget, so
  FedMPQ trains 8 bit planes per layer: the most planes it ever trains, i.e. the upper
  bound of its per-step cost (fewer bits cost less: fewer planes to sum).

Default workload: 4 clients x 512 samples (4 steps of 128 per local epoch), 3 rounds, 1 local
epoch, synthetic 32x32x3 data (10 classes), 256 test samples, 1 torch thread, the inline
executor. Each repetition of each variant runs in a fresh child process, alternating; the
reported figures are medians. "later rounds" (rounds 2..R) leave out one-off costs (dataset
load, building the quantized model on the first task).

Target (issue): FedMPQ round / FP32 round <= 1.5.

Usage::

    python benchmarks/bench_round_cost.py
    python benchmarks/bench_round_cost.py --reps 3 --rounds 4 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_overhead import (  # noqa: E402
    HEADER,
    busy_warning,
    row,
    run_child,
    summarise,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"name": "fedavg", "lr": 0.05},
    "fedmpq": {"name": "fedmpq", "lr": 0.25, "float_lr": 0.01, "lam": 1e-3, "epsilon": 0.02,
               "act_bits": 4},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=512, help="training samples per client")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--test", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--model", default="resnet20")
    a = p.parse_args()
    warn = busy_warning()
    if warn:
        print(f"WARNING: other fedsim runs are active, timings are not valid: {warn}")
    print(f"workload: {a.model}, batch {a.batch}, {a.clients} clients x {a.samples} samples "
          f"({a.samples // a.batch} steps/epoch) x {a.epochs} epoch(s) x {a.rounds} rounds, "
          f"synthetic 32x32x3, {a.test} test samples, threads {a.threads}, inline executor, "
          f"{a.reps} repetition(s)")
    overhead = str(HERE / "bench_overhead.py")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="fedsim-bench-") as tmp:
        for rep in range(a.reps):
            order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
            for v in order:
                algo = VARIANTS[v]
                extra = ["--model", a.model, "--algorithm", algo["name"],
                         "--algo-params", json.dumps({k: x for k, x in algo.items()
                                                      if k != "name"})]
                runs[v].append(run_child(overhead, "fedsim", a, Path(tmp), f"{v}{rep}", extra))
                r = runs[v][-1]
                print(f"  rep {rep} {v:6s} wall {r['wall_s']:.2f} s, rounds "
                      f"{', '.join(f'{x:.2f}' for x in r['round_s'])} s", flush=True)
    s = {k: summarise(v) for k, v in runs.items()}
    print()
    print(HEADER)
    for k in VARIANTS:
        print(row(k, s[k]))
    steady = s["fedmpq"]["steady_s"] / s["fp32"]["steady_s"]
    wall = s["fedmpq"]["wall_s"] / s["fp32"]["wall_s"]
    mem = s["fedmpq"]["peak_rss_mb"] / s["fp32"]["peak_rss_mb"]
    print()
    print(f"fedmpq/fp32 per round (later rounds): {steady:.2f}x  (target <= 1.5x: "
          f"{'met' if steady <= 1.5 else 'NOT met'})")
    print(f"fedmpq/fp32 whole run: {wall:.2f}x;  peak RSS: {mem:.2f}x")
    if warn:
        print("WARNING: the machine was busy; rerun on a quiet machine.")


if __name__ == "__main__":
    main()
