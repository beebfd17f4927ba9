"""Peak RSS over a long run must stay flat (growth under 5 % after round 5).

    python benchmarks/bench_memory.py [--scenario scenarios/quickstart.yaml] [--rounds 50]

Starts `fedsim run` in a subprocess, samples the RSS of it and its workers every 50 ms with
psutil, maps samples to rounds through the partial run folder's rounds.csv, and prints the
RSS after round 5 and the maximum afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def rss_tree(p: psutil.Process) -> int:
    total = 0
    for q in [p, *p.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit between the calls
            total += q.memory_info().rss
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="scenarios/quickstart.yaml")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "fedsim.cli", "run", a.scenario, "-o", out, "--name", "m",
               "--no-progress", "--set", f"rounds={a.rounds}"]
        for o in a.overrides:
            cmd += ["--set", o]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        ps = psutil.Process(proc.pid)
        partial = Path(out) / ".m.partial" / "rounds.csv"
        per_round: dict[int, int] = {}
        while proc.poll() is None:
            try:
                done = len(partial.read_text().splitlines()) - 1 if partial.exists() else -1
                rss = rss_tree(ps)
            except (psutil.Error, FileNotFoundError):
                break
            per_round[done] = max(per_round.get(done, 0), rss)
            time.sleep(0.05)
        assert proc.wait() == 0
    rounds = sorted(r for r in per_round if r >= 1)
    at5 = per_round.get(5) or per_round[rounds[min(4, len(rounds) - 1)]]
    after = max(per_round[r] for r in rounds if r >= 5)
    print(f"{a.scenario}, {a.rounds} rounds: RSS after round 5 {at5 / 2**20:.0f} MiB, "
          f"max after round 5 {after / 2**20:.0f} MiB, growth {100 * (after / at5 - 1):+.1f} %")
    for r in rounds[:: max(1, len(rounds) // 10)]:
        print(f"  round {r:>3}: {per_round[r] / 2**20:7.0f} MiB")


if __name__ == "__main__":
    main()
