"""The Python API: fedsim.runner / fedsim.load_run give what the CLI gives."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import fedsim
from fedsim.errors import InputError
from tests.conftest import TINY, write_scenario


def test_run_from_a_mapping_equals_the_cli_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fedsim.cli import main

    run = fedsim.run(TINY, overrides=["rounds=2"], output=tmp_path / "api", name="r")
    path = write_scenario(tmp_path, TINY)
    res = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "cli"), "--name",
                                    "r", "--no-progress", "--set", "rounds=2"])
    assert res.exit_code == 0, res.output
    for f in ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl"):
        assert (run.path / f).read_bytes() == (tmp_path / "cli" / "r" / f).read_bytes()
    assert run.summary["rounds"] == 2 and run.scenario["name"] == "tiny"


def test_load_run_reads_typed_rows_columns_and_events(tmp_path: Path) -> None:
    fedsim.run(TINY, output=tmp_path, name="r")
    run = fedsim.load_run(tmp_path / "r")
    rounds = run.rounds
    assert [r["round"] for r in rounds] == [0, 1]
    assert isinstance(rounds[0]["participants"], int)
    assert isinstance(rounds[0]["energy_j"], float)
    clients = run.clients
    assert {c["status"] for c in clients} <= {"ok", "straggler"}
    cols = run.columns("bits")
    assert len(cols["bits_down"]) == len(run.rows("bits"))
    assert run.rows("plan") and "binding" in run.rows("plan")[0]
    kinds = {e["kind"] for e in run.events({1})}
    assert "round_end" in kinds and all(e["round"] == 1 for e in run.events({1}))
    assert run.verify().ok
    assert run.report().name == "report.html"


def test_dataframes_when_pandas_is_installed(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    fedsim.run(TINY, output=tmp_path, name="r")
    df = fedsim.load_run(tmp_path / "r").dataframe("clients")
    assert isinstance(df, pd.DataFrame) and "energy_j" in df.columns


def test_bad_input_is_an_input_error_naming_the_key(tmp_path: Path) -> None:
    bad = copy.deepcopy(TINY)
    bad["rounds"] = "many"
    with pytest.raises(InputError, match="rounds"):
        fedsim.run(bad, output=tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        fedsim.load_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown table"):
        fedsim.run(TINY, output=tmp_path, name="x").rows("nope")
