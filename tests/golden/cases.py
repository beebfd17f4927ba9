"""The golden runs: short, real runs whose deterministic files are kept byte for byte in
``tests/golden/<case>/``. A refactor that changes any simulated number, of every run alike,
fails :mod:`tests.golden.test_golden`; a change meant to alter results regenerates them on
purpose with ``python -m tests.golden.regenerate`` and shows the diff in review.

Each case covers a path the others do not: FedAvg training through the engine (the
quickstart, as shipped), FedMPQ's bit-plane training with pruning-growing, and the
asynchronous FedBuff engine in system-only mode over a fleet with dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
FILES = ("events.jsonl", "rounds.csv", "clients.csv", "bits.csv")


@dataclass(frozen=True)
class Case:
    name: str
    scenario: str
    overrides: tuple[str, ...] = ()


CASES = (
    Case("quickstart", "scenarios/quickstart.yaml"),
    Case("fedmpq_digits", "scenarios/heterogeneous_40.yaml",
         ("rounds=2", "fleet.0.count=2", "fleet.1.count=2", "fleet.2.count=2",
          "fleet.3.count=2", "fleet.4.count=2", "fleet.5.count=2", "selection.per_round=6",
          "data.train_subset=600", "algorithm.local_epochs=1")),
    Case("async_system_only", "scenarios/async_fedbuff.yaml",
         ("system_only.enabled=true", "rounds=4")),
)


def run_case(case: Case, out: Path) -> Path:
    """Run one case into ``out`` and return its run folder."""
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import run_scenario

    loaded = load_scenario(ROOT / case.scenario, list(case.overrides))
    return run_scenario(loaded, output=out, run_name=case.name, progress=False).path
