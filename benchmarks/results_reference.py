"""The reference setting over seeds: FedMPQ, AQFL, FPQ8 and FedAvg (docs/results.md).

    python benchmarks/results_reference.py --seeds 1-5 --jobs 1 --output results/reference

Runs ``fedsim run scenarios/reference/<method>.yaml --set seed=S`` once per (method, seed),
``--jobs`` at a time (each run uses one thread; the default of one job keeps the machine's
second core free), keeps finished runs when restarted, then prints a Markdown report: per-seed
final accuracy, mean +- std, the per-round mean curve, and FedMPQ's allocation of its 2-, 4-
and 6-bit clients (0, 2, 5) per round for seed 1, beside the authors' code's seed-1 numbers
(measured by running their code; REFERENCE_RUN in the fidelity notes).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("fedmpq", "aqfl", "fpq8", "fedavg")
# The authors' code on the same setting, seed 1, eval mode (percent, rounds 1-10).
REFERENCE_SEED1 = {
    "fedmpq": [9.50, 9.75, 9.75, 10.35, 21.10, 33.65, 49.85, 59.60, 65.30, 65.80],
    "aqfl": [9.50, 9.75, 9.75, 11.60, 26.60, 36.50, 43.55, 54.35, 57.15, 58.80],
    "fpq8": [9.50, 9.50, 9.50, 13.75, 14.45, 21.10, 57.25, 66.15, 62.30, 70.30],
    "fedavg": [9.50, 10.95, 9.50, 19.55, 19.00, 36.05, 32.05, 45.65, 34.75, 42.00],
}
REFERENCE_ALLOC = {  # the code's server assignment for rounds 2..10 (client 0, 2, 5)
    0: ["88666666146661111118", "88877777115771111118", "88888888213771111118",
        "88888888211881111118"] + ["88888888211881111118"] * 5,
    2: ["88887666666666111668", "88888888877776111468", "88888888888886111368",
        "88888888888888111268", "88888888888888111268"] + ["88888888888888211168"] * 4,
    5: ["76666666666666666666", "88888888888776555668", "88888888888776555668",
        "88888888888887455668"] + ["88888888888888555568"] * 5,
}


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def run(method: str, seed: int, out: Path) -> Path:
    folder = out / f"{method}-s{seed}"
    if (folder / "summary.json").exists():
        return folder
    cmd = [sys.executable, "-m", "fedsim.cli", "run", str(ROOT / "scenarios" / "reference" /
           f"{method}.yaml"), "--set", f"seed={seed}", "-o", str(out), "--name",
           f"{method}-s{seed}", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    return folder


def curve(folder: Path) -> list[float]:
    with (folder / "rounds.csv").open() as f:
        return [100 * float(r["accuracy"]) for r in csv.DictReader(f)]


def allocations(folder: Path, client: int) -> list[str]:
    per: dict[int, list[str]] = {}
    with (folder / "bits.csv").open() as f:
        for r in csv.DictReader(f):
            if int(r["client_id"]) == client:
                per.setdefault(int(r["round"]), []).append(r["bits_down"])
    return ["".join(per[k]) for k in sorted(per)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output", type=Path, default=ROOT / "results" / "reference")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: report the finished runs in --output")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    methods = args.methods.split(",")
    args.output.mkdir(parents=True, exist_ok=True)
    jobs = [(m, s) for m in methods for s in seeds]
    if args.report_only:
        jobs = [(m, s) for m, s in jobs
                if (args.output / f"{m}-s{s}" / "summary.json").exists()]
        methods = [m for m in methods if any(j[0] == m for j in jobs)]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        folders = dict(zip(jobs, pool.map(lambda j: run(j[0], j[1], args.output), jobs),
                           strict=True))

    print("| method | " + " | ".join(f"seed {s}" for s in seeds)
          + " | mean +- std | the code, seed 1 |")
    print("|---|" + "---|" * (len(seeds) + 2))
    curves: dict[str, list[list[float]]] = {}
    for m in methods:
        cs = [curve(folders[(m, s)]) for s in seeds if (m, s) in folders]
        curves[m] = cs
        finals = [c[-1] for c in cs]
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        print(f"| {m} | " + " | ".join(f"{f:.2f}" for f in finals)
              + " | -" * (len(seeds) - len(finals))
              + f" | {statistics.fmean(finals):.2f} +- {sd:.2f} | {REFERENCE_SEED1[m][-1]:.2f} |")
    print("\nMean accuracy per round (%), fedsim over the seeds / the code's seed 1:\n")
    n = min(len(c) for cs in curves.values() for c in cs)
    print("| method | " + " | ".join(str(r + 1) for r in range(n)) + " |")
    print("|---|" + "---|" * n)
    for m in methods:
        mean = [statistics.fmean(c[r] for c in curves[m]) for r in range(n)]
        print(f"| {m} (fedsim) | " + " | ".join(f"{v:.1f}" for v in mean) + " |")
        print(f"| {m} (code, s1) | " + " | ".join(f"{v:.1f}" for v in REFERENCE_SEED1[m][:n])
              + " |")
    if "fedmpq" in methods:
        s = seeds[0]
        print(f"\nFedMPQ allocation per round (server assignment), seed {s}, fedsim / the code:\n")
        print("| round | client 0 (2 bits) | client 2 (4 bits) | client 5 (6 bits) |")
        print("|---|---|---|---|")
        al = {c: allocations(folders[("fedmpq", s)], c) for c in (0, 2, 5)}
        for r in range(1, len(al[0])):
            cells = []
            for c in (0, 2, 5):
                ours, theirs = al[c][r], REFERENCE_ALLOC[c][r - 1] if r - 1 < 9 else "-"
                cells.append(f"`{ours}`" + ("" if ours == theirs else f" (code `{theirs}`)"))
            print(f"| {r + 1} | " + " | ".join(cells) + " |")
    summary = {f"{m}-s{s}": json.loads((folders[(m, s)] / "summary.json").read_text())
               .get("final_accuracy") for m, s in folders}
    (args.output / "finals.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
