"""A worker that dies is replaced and its task retried; a task that always fails stops the
run with a clear message and leaves a resumable checkpoint."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main
from tests.conftest import TINY, write_scenario

FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")


def test_killed_worker_is_replaced_and_results_are_unchanged(tmp_path: Path,
                                                             monkeypatch) -> None:
    path = write_scenario(tmp_path, TINY)
    r = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "o"), "--name", "ref"])
    assert r.exit_code == 0, r.output
    marker = tmp_path / "killed.marker"
    monkeypatch.setenv("FEDSIM_FAULT", f"kill:1:2:{marker}")
    r = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "o"), "--name", "k",
                                  "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert marker.exists(), "the fault was not injected"
    for f in FILES:
        assert (tmp_path / "o" / "ref" / f).read_bytes() == (tmp_path / "o" / "k" / f).read_bytes()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_deterministic_failure_fails_clearly_and_stays_resumable(tmp_path: Path, monkeypatch,
                                                                 workers: str) -> None:
    data = copy.deepcopy(TINY)
    data["rounds"] = 3
    path = write_scenario(tmp_path, data)
    monkeypatch.setenv("FEDSIM_FAULT", "fail:1:0:-")
    r = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "o"), "--name", "f",
                                  "--workers", workers])
    assert r.exit_code == 1
    assert "client 0" in r.output and "round 1" in r.output
    assert "injected deterministic failure" in r.output and "--resume" in r.output
    assert (tmp_path / "o" / ".f.partial" / "checkpoint.pt").exists()
    monkeypatch.delenv("FEDSIM_FAULT")
    r = CliRunner().invoke(main, ["run", "--resume", str(tmp_path / "o" / "f")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "o" / "f" / "rounds.csv").read_text().splitlines()) == 4
