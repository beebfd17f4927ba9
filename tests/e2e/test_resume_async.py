"""Async (FedBuff) runs resume byte-identically: stopped after a checkpoint (with tasks
still in flight), stopped again after resuming, or SIGKILLed under two worker processes."""

from __future__ import annotations

import copy
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fedsim.runner.simulation as simulation
from fedsim.cli import main
from fedsim.config.loader import load_scenario
from fedsim.errors import RunError
from fedsim.runner.checkpoint import CHECKPOINT
from tests.conftest import TINY, write_scenario
from tests.e2e.test_resume import fedsim, rounds_written

FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")
VERSIONS = 12


def async_scenario(tmp_path: Path) -> Path:
    data = copy.deepcopy(TINY)
    data.update(rounds=VERSIONS, mode="async", fedbuff={"buffer_k": 2, "concurrency": 3})
    data["algorithm"] = {"name": "fedmpq", "lr": 0.25, "float_lr": 0.01, "batch_size": 16}
    data["fleet"][1].update(failure_prob=0.2, battery={
        "capacity_wh": 0.01, "recharge": {"period_s": 20, "duration_s": 10, "power_w": 1.0}})
    return write_scenario(tmp_path, data)


def stop_after(monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """Ctrl-C right after ``version``'s checkpoint is written."""
    original = simulation.RunRecorder.on_round

    def on_round(self, rec):  # type: ignore[no-untyped-def]
        original(self, rec)
        if rec.round == version:
            raise KeyboardInterrupt

    monkeypatch.setattr(simulation.RunRecorder, "on_round", on_round)


def run_until(path: Path, out: Path, name: str, version: int,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    with monkeypatch.context() as m:
        stop_after(m, version)
        with pytest.raises(RunError, match="checkpointed"):
            simulation.run_scenario(load_scenario(path), output=out, run_name=name,
                                    progress=False)
    return out / f".{name}.partial"


def same_files(a: Path, b: Path) -> None:
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_async_run_stopped_mid_flight_resumes_byte_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, out = async_scenario(tmp_path), tmp_path / "out"
    simulation.run_scenario(load_scenario(path), output=out, run_name="ref", progress=False)
    for version in (1, 7):
        name = f"cut{version}"
        partial = run_until(path, out, name, version, monkeypatch)
        ck = torch.load(partial / CHECKPOINT, weights_only=True)
        assert ck["engine"]["next_round"] == version + 1
        if version == 1:  # two slow clients are still training: carried over, not retrained
            assert ck["replay"]["open"] and ck["replay"]["tasks"]
        res = CliRunner().invoke(main, ["run", "--resume", str(out / name), "--no-progress"])
        assert res.exit_code == 0, res.output
        same_files(out / "ref", out / name)


def test_a_resumed_async_run_can_be_stopped_and_resumed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, out = async_scenario(tmp_path), tmp_path / "out"
    simulation.run_scenario(load_scenario(path), output=out, run_name="ref", progress=False)
    partial = run_until(path, out, "twice", 3, monkeypatch)
    with monkeypatch.context() as m:
        stop_after(m, 8)
        res = CliRunner().invoke(main, ["run", "--resume", str(partial), "--no-progress"])
        assert res.exit_code == 1 and "checkpointed" in res.output, res.output
    res = CliRunner().invoke(main, ["run", "--resume", str(partial), "--no-progress"])
    assert res.exit_code == 0, res.output
    same_files(out / "ref", out / "twice")


@pytest.mark.slow
def test_async_run_sigkilled_under_two_workers_resumes_byte_identically(
        tmp_path: Path) -> None:
    path, out = async_scenario(tmp_path), tmp_path / "out"
    assert fedsim("run", str(path), "-o", str(out), "--name", "ref").wait() == 0
    partial = out / ".k.partial"
    proc = fedsim("run", str(path), "-o", str(out), "--name", "k", "--workers", "2")
    deadline = time.monotonic() + 120
    while rounds_written(partial) < 5 and time.monotonic() < deadline:
        assert proc.poll() is None, "run finished before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = CliRunner().invoke(main, ["run", "--resume", str(out / "k"), "--workers", "2",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    same_files(out / "ref", out / "k")
