"""System-only scale: engine + cost model + network + selection for 1k..100k clients.

    python benchmarks/bench_system_only.py [--rounds 10] [--per-round 1000] [--all]

Six device classes in heterogeneous_40's proportions; each size runs in a fresh process and
reports host seconds and peak RSS (ratio of time to the 1k-client run: linear growth reads as
time ratio ~ client ratio). ``--all`` selects every client in every round (10^6 client-rounds
at 100k clients) instead of ``--per-round``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

SHARES = (0.15, 0.25, 0.2, 0.15, 0.1, 0.15)  # mcu, phone, flagship, pi4, jetson, laptop


def one(n: int, rounds: int, per_round: int | None, out: str) -> dict:
    counts = [max(1, round(n * s)) for s in SHARES]
    counts[1] += n - sum(counts)
    args = [sys.executable, "-m", "fedsim.cli", "run", "scenarios/heterogeneous_40.yaml",
            "--system-only", "--no-progress", "-o", out, "--name", f"n{n}",
            "--set", f"rounds={rounds}"]
    for i, c in enumerate(counts):
        args += ["--set", f"fleet.{i}.count={c}"]
    if per_round:
        args += ["--set", f"selection.per_round={per_round}"]
    else:
        args += ["--set", "selection.per_round=null"]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(f"{out}/n{n}/summary.json") as f:
        summary = json.load(f)
    return {"clients": n, "wall_s": wall, "engine_s": summary["host"]["wall_s"],
            "rss_mb": summary["host"]["peak_rss_mb"],
            "client_rounds": summary["client_rounds"]["total"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=1000)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 30_000, 100_000])
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for n in a.sizes:
            rows.append(one(n, a.rounds, None if a.all else a.per_round, out))
    base = rows[0]
    print(f"{'clients':>8} {'client-rounds':>13} {'process s':>10} {'run s':>8} "
          f"{'x time':>7} {'x clients':>9} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['clients']:>8} {r['client_rounds']:>13} {r['wall_s']:>10.1f} "
              f"{r['engine_s']:>8.1f} {r['engine_s'] / base['engine_s']:>7.1f} "
              f"{r['clients'] / base['clients']:>9.0f} {r['rss_mb']:>11.0f}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
