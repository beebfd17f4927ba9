"""Compare FedMPQ and FedAvg on the quickstart fleet from Python, and read the runs back.

    python examples/compare_methods.py            # about 30 s on 2 cores

Each run is a normal run folder under results/examples/ (open its report.html, or run
`fedsim verify` on it). See docs/api.md.
"""

from __future__ import annotations

from pathlib import Path

import fedsim

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "examples"


def main() -> None:
    runs = {}
    for method in ("fedmpq", "fedavg"):
        runs[method] = fedsim.run(
            REPO / "scenarios" / "heterogeneous_40.yaml",
            overrides=[f"algorithm.name={method}", "rounds=5"],  # fedavg ignores lam, ...
            output=OUT, name=f"h40-{method}")
    print(f"{'method':<8} {'accuracy':>9} {'sim time':>9} {'energy':>10}")
    for method, run in runs.items():
        last = run.rounds[-1]  # typed rows of rounds.csv
        print(f"{method:<8} {last['accuracy']:9.4f} {last['sim_time_s']:8.1f}s "
              f"{last['energy_j']:9.1f}J")
    # per device class: joules of the last run, from clients.csv as numpy columns
    cols = runs["fedmpq"].columns("clients")
    for cls in sorted(set(cols["device_class"])):
        mask = cols["device_class"] == cls
        print(f"fedmpq {cls:<8} {cols['energy_j'][mask].sum():10.1f} J over "
              f"{mask.sum()} client-rounds")
    print("report:", runs["fedmpq"].report())


if __name__ == "__main__":
    main()
