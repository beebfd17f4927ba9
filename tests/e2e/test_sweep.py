"""`fedsim sweep`: grids checked up front, parallel runs identical to single runs, kill -9
and resume, the table, and `fedsim compare` on a sweep folder."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "scenarios" / "quickstart.yaml"
FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")


@pytest.mark.parametrize(("grid", "needle"), [
    (["algorithm.nme=fedavg,aqfl"], "algorithm.nme"),           # unknown key
    (["rounds="], "empty value"),                                 # empty list
    (["rounds=2,,3"], "empty value"),
    (["rounds=two,three"], "rounds"),                            # type mismatch
    (["fleet.0.budget_bits=2,99"], "fleet[0].budget_bits"),     # out of range, 2nd value
    (["rounds=1", "rounds=2"], "twice"),
    ([], "at least one --grid"),
    (["norounds"], "KEY=V1,V2"),
    (["seed=1,2"], "--seeds"),                                   # seeds have their own flag
])
def test_bad_grids_exit_2_before_any_run(tmp_path: Path, grid: list[str], needle: str) -> None:
    args = ["sweep", str(QUICK), "-o", str(tmp_path / "out")]
    for g in grid:
        args += ["--grid", g]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def _runs_done(folder: Path) -> int:
    return sum(1 for p in folder.glob("c*-s*") if (p / "summary.json").exists())


def test_sweep_survives_kill_9_and_matches_single_runs(tmp_path: Path) -> None:
    """4 methods x 2 budgets x 3 seeds of the quickstart (1 round each), 2 at a time."""
    out = tmp_path / "out"
    args = [str(QUICK), "--grid", "algorithm.name=fedmpq,aqfl,fpq8,fedavg",
            "--grid", "fleet.1.budget_bits=2,4", "--seeds", "1-3", "--set", "rounds=1",
            "--workers", "2", "-o", str(out), "--name", "sw"]
    proc = subprocess.Popen([sys.executable, "-m", "fedsim.cli", "sweep", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    folder = out / "sw"
    deadline = time.monotonic() + 120
    while _runs_done(folder) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _runs_done(folder)
    assert 3 <= killed_at < 24
    time.sleep(1.0)  # children die with the sweep (PR_SET_PDEATHSIG)
    assert _runs_done(folder) <= killed_at + 2

    res = CliRunner().invoke(main, ["sweep", *args])
    assert res.exit_code == 0, res.output
    assert "already done" in res.output
    assert _runs_done(folder) == 24 and not list(folder.glob(".*.partial"))
    rows = list(csv.DictReader((folder / "sweep.csv").open()))
    assert len(rows) == 8 and all(r["seeds"] == "3" for r in rows)
    assert any(r["pareto_energy"] == "1" for r in rows)
    doc = json.loads((folder / "sweep.json").read_text())
    assert len(doc["plan"]["cells"]) == 8 and (folder / "sweep.html").exists()

    # a cell's run is byte-identical to running it alone
    cell = doc["plan"]["cells"][5]
    single = CliRunner().invoke(main, ["run", str(QUICK), "-o", str(tmp_path / "single"),
                                       "--name", "one", "--no-progress", "--set", "rounds=1",
                                       "--set", "seed=2",
                                       *[a for o in cell["overrides"] for a in ("--set", o)]])
    assert single.exit_code == 0, single.output
    for f in FILES:
        assert (folder / f"{cell['cell']}-s2" / f).read_bytes() == \
            (tmp_path / "single" / "one" / f).read_bytes(), f

    # compare takes the sweep folder: one entry per cell
    cmp = CliRunner().invoke(main, ["compare", str(folder), "-o", str(tmp_path / "cmp")])
    assert cmp.exit_code == 0, cmp.output
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "c07: fedavg · 4" in md

    # the same folder with another grid is refused
    other = CliRunner().invoke(main, ["sweep", str(QUICK), "--grid", "rounds=1,2", "-o",
                                      str(out), "--name", "sw"])
    assert other.exit_code == 2 and "different sweep" in other.output


def test_sweep_on_ray_gives_the_same_runs(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    args = [str(QUICK), "--grid", "algorithm.name=fedavg,aqfl", "--set", "rounds=1",
            "--workers", "2", "--name", "sw"]
    local = CliRunner().invoke(main, ["sweep", *args, "-o", str(tmp_path / "p")])
    on_ray = CliRunner().invoke(main, ["sweep", *args, "-o", str(tmp_path / "r"),
                                       "--executor", "ray"])
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    for run in ("c00-s1", "c01-s1"):
        for f in FILES:
            assert (tmp_path / "p" / "sw" / run / f).read_bytes() == \
                (tmp_path / "r" / "sw" / run / f).read_bytes()


def test_grid_values_may_be_lists_and_mappings() -> None:
    from fedsim.sweep.grid import cells_of, parse_grid

    axes = parse_grid(["model.options.channels=[8,16],[16,32]",
                       "fleet.0.budget_bits={auto: true, adapt: battery},4"])
    assert axes[0][1] == [[8, 16], [16, 32]]
    assert axes[1][1] == [{"auto": True, "adapt": "battery"}, 4]
    cells = cells_of(axes)
    assert len(cells) == 4 and cells[0].overrides[0] == "model.options.channels=[8, 16]"
