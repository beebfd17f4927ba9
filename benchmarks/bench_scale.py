"""Population scale: system-only runs of 10^3 to 10^6 clients x 10 rounds, all
participating, against a plain SimPy loop measured in the same run; then the cross-device
study (10^6 clients, 1,000 selected per round, 1,000 rounds, diurnal availability).

    python benchmarks/bench_scale.py                 # every row (about 8 minutes)
    python benchmarks/bench_scale.py --sizes 1000,10000 --no-study

Each fedsim row is a fresh `fedsim run` process (the heterogeneous_40 fleet with its phone
group grown to N clients, ``selection.fraction=1``, Parquet records for every row); its
peak RSS is sampled every 20 ms. The baseline is the simplest SimPy
model of the same rounds: one process per client-round with three timeouts (downlink,
compute, uplink) and a round that waits for all of them, no records written. Prints a
Markdown table (the one in docs/performance.md). "engine" is the run's own time in the
engine (simulating and writing records; ``host.simulate_s`` of its summary.json), without
the process start-up and the fleet build; "marginal" is the engine time added per
client-round added since the row above: what has to stay flat for time to grow linearly.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import simpy

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "heterogeneous_40.yaml"
OTHER_CLIENTS = 40 - 10  # the fleet's groups other than the phones


def plain_simpy(n: int, rounds: int) -> float:
    """Seconds for ``rounds`` rounds of ``n`` client processes with three timeouts each."""
    env = simpy.Environment()

    def client(i: int):  # type: ignore[no-untyped-def]
        yield env.timeout(0.5 + (i % 97) * 1e-3)
        yield env.timeout(2.0 + (i % 89) * 1e-3)
        yield env.timeout(0.4 + (i % 83) * 1e-3)

    def server():  # type: ignore[no-untyped-def]
        for _ in range(rounds):
            yield env.all_of([env.process(client(i)) for i in range(n)])

    t0 = time.perf_counter()
    env.run(until=env.process(server()))
    return time.perf_counter() - t0


def fedsim_run(overrides: list[str], out: Path) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS bytes, run folder bytes, seconds in the engine) of one
    `fedsim run` process (the last from its summary.json: ``host.simulate_s``)."""
    cmd = [sys.executable, "-m", "fedsim", "run", str(SCENARIO), "--system-only",
           "--no-progress", "--events", "parquet", "-o", str(out)]
    cmd += [a for o in overrides for a in ("--set", o)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak[0] = max(peak[0], p.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.02)

    th = threading.Thread(target=sample)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode:
        raise SystemExit(f"fedsim run failed: {err.decode()[-2000:]}")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    import json

    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    return wall, peak[0], size, float(summary["host"]["simulate_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-study", action="store_true")
    args = ap.parse_args()
    rows = []
    startups = []
    for _ in range(3):  # start-up: imports, the layer table, 40 clients (median of 3)
        with tempfile.TemporaryDirectory() as d:
            startups.append(fedsim_run(["rounds=1"], Path(d))[0])
    startup = sorted(startups)[1]
    print(f"... start-up (40 clients, 1 round): {startup:.1f} s", flush=True)
    for n in [int(s) for s in args.sizes.split(",")]:
        base = plain_simpy(n, args.rounds)
        runs = []
        for _ in range(3 if n <= 10_000 else 1):  # small runs: median of 3 (start-up noise)
            with tempfile.TemporaryDirectory() as d:
                runs.append(fedsim_run(
                    [f"fleet.1.count={n - OTHER_CLIENTS}", "selection.fraction=1.0",
                     "selection.per_round=null", f"rounds={args.rounds}"], Path(d)))
        wall, rss, size, sim = sorted(runs)[len(runs) // 2]
        cr = n * args.rounds
        rows.append((f"{n:,} x {args.rounds}", cr, wall, rss, size, base, sim))
        print(f"... {rows[-1][0]}: fedsim {wall:.1f} s, plain SimPy {base:.1f} s", flush=True)
    if not args.no_study:
        n, per, rounds = 1_000_000, 1000, 1000
        base = plain_simpy(per, rounds)
        with tempfile.TemporaryDirectory() as d:
            wall, rss, size, sim = fedsim_run(
                [f"fleet.1.count={n - OTHER_CLIENTS}", f"selection.per_round={per}",
                 f"rounds={rounds}",
                 "availability={model: diurnal, period_s: 86400, online_fraction: 0.5}"],
                Path(d))
        rows.append((f"{n:,} pop., {per:,}/round x {rounds:,}, diurnal", per * rounds, wall,
                     rss, size, base, sim))
    print(f"\nstart-up of every run (40 clients, 1 round; median of 3): {startup:.1f} s")
    print("\n| run | client-rounds | fedsim wall (s) | engine (s) | engine us per client-round, "
          "marginal | peak RSS (GiB) | run folder (MB) | plain SimPy loop (s) | "
          "fedsim / plain |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    prev: tuple[int, float] | None = None
    for name, cr, wall, rss, size, base, sim in rows:
        # engine time added per client-round added since the row above: a run also pays
        # per round (a checkpoint, three Parquet parts, fsyncs: ~50 ms), which dominates the
        # smallest runs, so linear growth shows in the increments
        marginal = ("" if prev is None or "pop." in name
                    else f"{1e6 * (sim - prev[1]) / (cr - prev[0]):.2f}")
        if "pop." not in name:
            prev = (cr, sim)
        print(f"| {name} | {cr:,} | {wall:.1f} | {sim:.2f} | {marginal} | "
              f"{rss / 2**30:.2f} | {size / 1e6:.0f} | {base:.1f} | {wall / base:.2f} |")
    shutil.rmtree(Path(tempfile.gettempdir()) / "fedsim-bench-scale", ignore_errors=True)


if __name__ == "__main__":
    main()
