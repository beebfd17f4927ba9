"""The reporting tests' run-folder fixture writes what ``fedsim verify`` accepts.

tests/reporting/runfolder.py makes up a timeline but writes it through the real format
(records, writer, payloads); this keeps its timeline honest too (energy sums, phases vs
events, payloads vs bits, statuses vs counts, summary totals), so the fixture cannot drift
from the simulator's format again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedsim.records.reader import read_rows
from fedsim.records.schema import BITS, CLIENTS, ROUNDS
from fedsim.verify import verify_run
from tests.reporting.runfolder import MCU, PHONE, SBC, Group, make_run

# links so slow that the deadline cuts a transfer: the uplink (round 0) or the downlink
SLOW_UP = Group("slow-up", "esp32", "mcu", 1, 4, 19.0, 0.5, 0.1, 1e8, 1e5, 0.3)
SLOW_DOWN = Group("slow-down", "esp32", "mcu", 1, 4, 5.0, 0.5, 0.1, 2e4, 1e8, 0.3)

VARIANTS: dict[str, dict[str, Any]] = {
    "fedmpq": {},
    "fedavg": {"algorithm": "fedavg"},
    "aqfl": {"algorithm": "aqfl"},
    "fpq8": {"algorithm": "fpq8", "groups": (PHONE, SBC, MCU), "rounds": 4},
    "infeasible": {"infeasible": ((2, 1), (0, 3))},
    "dropouts": {"dropouts": ((2, 0), (1, 5)), "slow": ()},
    "dropout-and-straggler": {"dropouts": ((1, 4),)},  # slow client 4 also drops out
    "per-round": {"per_round": 3, "groups": (PHONE, SBC, MCU), "rounds": 4},
    "no-deadline": {"deadline_s": None},
    "transfers-miss-the-deadline": {"algorithm": "fedavg", "slow": (),
                                    "groups": (PHONE, SLOW_UP, SLOW_DOWN)},
    "zero-rounds": {"rounds": 0, "planned_rounds": 3},
}


@pytest.mark.parametrize("kwargs", VARIANTS.values(), ids=list(VARIANTS))
def test_fixture_run_folders_pass_verify(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    path = make_run(tmp_path, "run", **kwargs)
    rep = verify_run(path)
    assert rep.ok, rep.render()
    assert rep.checks > 0


def test_fixture_writes_every_column_of_the_format(tmp_path: Path) -> None:
    path = make_run(tmp_path, "run", dropouts=((2, 0),), infeasible=((0, 2),))
    for schema in (ROUNDS, CLIENTS, BITS):
        header = (path / schema.file).read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == schema.names
    statuses = [row["status"] for row in read_rows(path / "clients.csv", CLIENTS)]
    assert {"ok", "straggler", "infeasible", "battery"} <= set(statuses)
    assert not list(tmp_path.glob(".*.partial"))  # committed to its final name
