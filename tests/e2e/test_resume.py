"""Kill a real `fedsim run` with SIGKILL at several points, resume it, compare the files."""

from __future__ import annotations

import copy
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from click.testing import CliRunner

from fedsim.cli import main
from fedsim.runner.checkpoint import CHECKPOINT
from tests.conftest import TINY, write_scenario

FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")
ROUNDS = 20


def scenario(tmp_path: Path) -> Path:
    data = copy.deepcopy(TINY)
    data["rounds"] = ROUNDS
    data["algorithm"] = {"name": "fedmpq", "lr": 0.25, "float_lr": 0.01, "batch_size": 16}
    data["fleet"][1].update(failure_prob=0.2, battery={
        "capacity_wh": 0.01, "recharge": {"period_s": 20, "duration_s": 10, "power_w": 1.0}})
    return write_scenario(tmp_path, data)


def fedsim(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fedsim.cli", *args, "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rounds_written(partial: Path) -> int:
    try:
        return len((partial / "rounds.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return -1


def test_sigkill_at_three_points_then_resume_is_byte_identical(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    out = tmp_path / "out"
    assert fedsim("run", str(path), "-o", str(out), "--name", "ref").wait() == 0
    rnd = random.Random(0)
    for target in (2, 8, 14):
        name = f"kill{target}"
        partial = out / f".{name}.partial"
        proc = fedsim("run", str(path), "-o", str(out), "--name", name)
        deadline = time.monotonic() + 120
        while rounds_written(partial) < target and time.monotonic() < deadline:
            assert proc.poll() is None, "run finished before it could be killed"
            time.sleep(0.005)
        time.sleep(rnd.uniform(0, 0.05))  # mid-round, or while writing
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / name).exists() and partial.exists()
        # the checkpoint is a plain tensor file
        ck = torch.load(partial / CHECKPOINT, weights_only=True)
        assert ck["engine"]["next_round"] >= target
        res = CliRunner().invoke(main, ["run", "--resume", str(out / name), "--no-progress"])
        assert res.exit_code == 0, res.output
        for f in FILES:
            assert (out / "ref" / f).read_bytes() == (out / name / f).read_bytes(), (name, f)
        assert not (out / name / CHECKPOINT).exists()
    res = CliRunner().invoke(main, ["run", "--resume", str(out / "kill2")])
    assert res.exit_code == 0 and "already finished" in res.output


def kill_after_two_rounds(path: Path, out: Path, name: str) -> Path:
    """Run ``path`` as ``name`` in a process, SIGKILL it once two rounds are written; the
    run's partial folder."""
    partial = out / f".{name}.partial"
    proc = fedsim("run", str(path), "-o", str(out), "--name", name)
    while rounds_written(partial) < 2:
        assert proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return partial


def test_resume_with_changed_scenario_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    out = tmp_path / "out"
    kill_after_two_rounds(path, out, "k")
    res = CliRunner().invoke(main, ["run", str(path), "--resume", str(out / "k"),
                                    "--set", "algorithm.lam=0.01"])
    assert res.exit_code == 2
    assert "key 'algorithm.lam'" in res.output and "changed" in res.output
    # changing only how it runs (workers) is fine
    res = CliRunner().invoke(main, ["run", "--resume", str(out / "k"), "--workers", "2",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output


def test_resume_of_nothing_is_an_input_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--resume", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no interrupted run" in res.output


def test_resume_refuses_when_a_file_the_run_read_changed(tmp_path: Path) -> None:
    """run.json fingerprints every input; a profile edited between the kill and the resume
    is refused, naming the file; restored, the run resumes."""
    import json
    import shutil

    from fedsim.hardware import ProfileLibrary

    mine = tmp_path / "profiles"
    mine.mkdir()
    src = ProfileLibrary.load().source_of("raspberry_pi_4")
    shutil.copy(src, mine / "my_pi.yaml")
    text = (mine / "my_pi.yaml").read_text().replace("name: raspberry_pi_4", "name: my_pi")
    (mine / "my_pi.yaml").write_text(text)
    path = scenario(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["profiles"] = ["profiles"]
    data["fleet"][0]["profile"] = "my_pi"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    partial = kill_after_two_rounds(path, out, "f")
    inputs = json.loads((partial / "run.json").read_text())["inputs"]
    assert str((mine / "my_pi.yaml").resolve()) in {i["path"] for i in inputs}
    (mine / "my_pi.yaml").write_text(text.replace("name: my_pi", "name: my_pi  # edited"))
    res = CliRunner().invoke(main, ["run", "--resume", str(out / "f"), "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "my_pi.yaml" in res.output and "changed" in res.output
    (mine / "my_pi.yaml").write_text(text)
    res = CliRunner().invoke(main, ["run", "--resume", str(out / "f"), "--no-progress"])
    assert res.exit_code == 0, res.output
    verified = CliRunner().invoke(main, ["verify", str(out / "f")])
    assert "files fingerprinted in run.json, all unchanged" in verified.output
