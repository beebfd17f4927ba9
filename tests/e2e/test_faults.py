"""Faults under every executor: the main process SIGKILLed at random points under two
worker processes and under Ray, a Ray worker killed mid-task, and a full disk while the run
folder or a checkpoint is written. Each ends in files byte-identical to an undisturbed run."""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import fedsim.runner.checkpoint as checkpoint
from fedsim.cli import main
from tests.conftest import TINY, write_scenario
from tests.e2e.test_resume import fedsim, rounds_written

FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")


def scenario(tmp_path: Path, rounds: int = 8) -> Path:
    data = copy.deepcopy(TINY)
    data["rounds"] = rounds
    data["fleet"][1].update(failure_prob=0.2)
    return write_scenario(tmp_path, data)


def same_files(a: Path, b: Path) -> None:
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def kill_and_resume(path: Path, out: Path, name: str, executor: list[str], at: int,
                    seed: int) -> list[int]:
    """SIGKILL the run somewhere after round ``at``, resume it; the killed run's children."""
    import psutil

    partial = out / f".{name}.partial"
    proc = fedsim("run", str(path), "-o", str(out), "--name", name, *executor)
    deadline = time.monotonic() + 240
    while rounds_written(partial) < at and time.monotonic() < deadline:
        assert proc.poll() is None, "run finished before it could be killed"
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0, 0.2))  # anywhere in the next round
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not (out / name).exists(), "the run ended before the kill"
    res = CliRunner().invoke(main, ["run", "--resume", str(out / name), *executor,
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    return children


def assert_gone(pids: list[int], within_s: float) -> None:
    import psutil

    def alive() -> list[int]:
        out = []
        for p in pids:
            try:
                if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    deadline = time.monotonic() + within_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(), f"processes outlived the killed run: {alive()}"


@pytest.mark.slow
def test_sigkill_under_two_worker_processes_resumes_identically(tmp_path: Path) -> None:
    # forked workers make a round of this tiny fleet take milliseconds: enough rounds that
    # the kill (up to 0.2 s after round `at` is written) lands before the run ends
    path, out = scenario(tmp_path, rounds=60), tmp_path / "out"
    assert fedsim("run", str(path), "-o", str(out), "--name", "ref").wait() == 0
    for at, seed in ((1, 0), (5, 1)):
        children = kill_and_resume(path, out, f"w{at}", ["--workers", "2"], at, seed)
        same_files(out / "ref", out / f"w{at}")
        assert children, "no worker processes were running"
        assert_gone(children, within_s=5.0)  # the killed run left no worker behind


@pytest.mark.slow
def test_sigkill_under_ray_resumes_identically(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    path, out = scenario(tmp_path, rounds=30), tmp_path / "out"
    assert fedsim("run", str(path), "-o", str(out), "--name", "ref").wait() == 0
    import psutil

    children = kill_and_resume(path, out, "ray", ["--executor", "ray", "--workers", "2"], 2, 2)
    same_files(out / "ref", out / "ray")
    # Ray's workers, raylet and GCS notice their driver died; its two per-node agents may
    # linger (docs/reproducibility.md): they hold no run state, and are cleaned up here
    agents = []
    for pid in children:
        try:
            if "Agent" in " ".join(psutil.Process(pid).cmdline()):
                agents.append(pid)
        except psutil.Error:
            pass
    assert_gone([p for p in children if p not in agents], within_s=30.0)
    for pid in agents:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


@pytest.mark.slow
def test_a_ray_worker_killed_mid_task_is_replaced_and_retried(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    path, out = scenario(tmp_path, rounds=3), tmp_path / "out"
    assert fedsim("run", str(path), "-o", str(out), "--name", "ref").wait() == 0
    marker = tmp_path / "killed.marker"
    env = {**os.environ, "FEDSIM_FAULT": f"kill:1:2:{marker}"}
    proc = subprocess.run(
        [*fedsim_cmd(), "run", str(path), "-o", str(out), "--name", "k", "--executor", "ray",
         "--workers", "2", "--no-progress"], env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert marker.exists(), "the fault was not injected"
    same_files(out / "ref", out / "k")


def fedsim_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "fedsim.cli"]


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, out = scenario(tmp_path, rounds=5), tmp_path / "out"
    assert CliRunner().invoke(main, ["run", str(path), "-o", str(out), "--name", "ref",
                                     "--no-progress"]).exit_code == 0
    import torch

    real_save = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the disk fills up half-way through the third checkpoint
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    res = CliRunner().invoke(main, ["run", str(path), "-o", str(out), "--name", "full",
                                    "--no-progress"])
    assert res.exit_code == 1
    partial = out / ".full.partial"
    assert f"No space left on device while writing {partial}" in res.output
    assert f"fedsim run --resume {partial}" in res.output
    ck = checkpoint.load_checkpoint(partial)
    assert ck is not None and ck["engine"]["next_round"] == 2  # the second one, intact
    assert not (partial / f".{checkpoint.CHECKPOINT}.tmp").exists()
    monkeypatch.setattr(torch, "save", real_save)
    res = CliRunner().invoke(main, ["run", "--resume", str(partial), "--no-progress"])
    assert res.exit_code == 0, res.output
    same_files(out / "ref", out / "full")


def _can_mount() -> bool:
    return (os.geteuid() == 0 and shutil.which("mount") is not None
            and os.environ.get("FEDSIM_NO_MOUNT") is None)


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_a_really_full_disk_stops_cleanly_and_resumes_when_space_is_back(
        tmp_path: Path) -> None:
    data = copy.deepcopy(TINY)
    data["rounds"] = 40
    path = write_scenario(tmp_path, data)
    ref = tmp_path / "ref"
    assert fedsim("run", str(path), "-o", str(ref), "--name", "r").wait() == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        res = CliRunner().invoke(main, ["run", str(path), "-o", str(disk / "out"), "--name",
                                        "r", "--no-progress"])
        assert res.exit_code == 1, res.output
        partial = disk / "out" / ".r.partial"
        assert "No space left on device while writing" in res.output
        assert f"fedsim run --resume {partial}" in res.output
        assert checkpoint.load_checkpoint(partial) is not None
        subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
        res = CliRunner().invoke(main, ["run", "--resume", str(partial), "--no-progress"])
        assert res.exit_code == 0, res.output
        same_files(ref / "r", disk / "out" / "r")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
