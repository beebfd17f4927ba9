"""With workers, round r's evaluation runs while round r+1 trains; files stay identical.

Also: workers are forked (one torch thread, CPU) or spawned (otherwise), with the same
results, and every checkpoint still describes the end of its own round."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fedsim.execution.executors import start_method
from fedsim.runner import ports
from fedsim.runner.checkpoint import CHECKPOINT
from tests.conftest import TINY, write_scenario
from tests.e2e.test_determinism import DETERMINISTIC_FILES, run


def _scenario(tmp_path: Path) -> Path:
    data = copy.deepcopy(TINY)
    data["selection"] = {"per_round": 3}
    data["rounds"] = 3
    return write_scenario(tmp_path, data)


def test_deferred_evaluation_keeps_files_and_order(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    original = ports._PendingEval.result

    def result(self):  # type: ignore[no-untyped-def]
        calls.append("eval")
        return original(self)

    monkeypatch.setattr(ports._PendingEval, "result", result)
    path = _scenario(tmp_path)
    a = run(path, tmp_path / "out", name="inline")
    assert calls == []  # in-process training evaluates at once
    b = run(path, tmp_path / "out", "execution.workers=2", name="pool")
    assert len(calls) >= 3  # every round's test was deferred (result() may be asked twice)
    for f in DETERMINISTIC_FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    events = [json.loads(line) for line in (b / "events.jsonl").read_text().splitlines()]
    ends = [e["round"] for e in events if e["kind"] == "round_end"]
    assert ends == [0, 1, 2]
    # each round's end comes before anything of the next round
    kinds = [(e["round"], e["kind"]) for e in events]
    for r in (0, 1):
        assert kinds.index((r, "round_end")) < kinds.index((r + 1, "round_start"))


def test_checkpoint_describes_its_own_round_when_evaluation_is_deferred(
        tmp_path: Path, monkeypatch) -> None:
    """The checkpoint of round r is written once round r's test is in, during round r+1:
    it must still hold round r's engine state, server state and file lengths."""
    from fedsim.runner import simulation

    saved: list[dict] = []
    original = simulation.save_checkpoint

    def save(folder, payload):  # type: ignore[no-untyped-def]
        saved.append({"next": payload["engine"]["next_round"],
                      "now": payload["engine"]["now"], "offsets": dict(payload["offsets"])})
        original(folder, payload)

    monkeypatch.setattr(simulation, "save_checkpoint", save)
    path = _scenario(tmp_path)
    b = run(path, tmp_path / "out", "execution.workers=2", name="pool")
    inline_saved = saved[:]
    saved.clear()
    a = run(path, tmp_path / "out", name="inline")
    assert [s["next"] for s in inline_saved] == [1, 2, 3]
    assert inline_saved == saved
    rounds = (a / "rounds.csv").read_text().splitlines()
    assert inline_saved[0]["offsets"]["rounds.csv"] == len(
        "\n".join(rounds[:2]).encode()) + 1
    assert not (b / CHECKPOINT).exists()  # a finished run keeps none


@pytest.mark.parametrize("threads,device,method", [(1, "cpu", "fork"), (2, "cpu", "spawn"),
                                                   (1, "cuda", "spawn")])
def test_start_method(threads: int, device: str, method: str) -> None:
    from types import SimpleNamespace

    assert start_method(SimpleNamespace(threads=threads, device=device)) == method  # type: ignore[arg-type]


def test_spawned_workers_give_the_same_files(tmp_path: Path, monkeypatch) -> None:
    path = _scenario(tmp_path)
    a = run(path, tmp_path / "out", "execution.workers=2", name="fork")
    monkeypatch.setenv("FEDSIM_START_METHOD", "spawn")
    b = run(path, tmp_path / "out", "execution.workers=2", name="spawn")
    for f in DETERMINISTIC_FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_a_run_stopped_while_a_round_is_held_keeps_that_round(tmp_path: Path,
                                                               monkeypatch) -> None:
    """An error before round 1's first wait: round 0's test is still pending, yet round 0
    is finished work; it is recorded and checkpointed before the run stops."""
    import torch

    from fedsim.errors import RunError
    from fedsim.runner.simulation import run_scenario

    original = ports.TrainingPort.submit

    def submit(self, item):  # type: ignore[no-untyped-def]
        if item.round == 1:
            raise RunError("injected: round 1 cannot start")
        return original(self, item)

    monkeypatch.setattr(ports.TrainingPort, "submit", submit)
    from fedsim.config.loader import load_scenario

    loaded = load_scenario(_scenario(tmp_path), ["execution.workers=2"])
    with pytest.raises(RunError, match="--resume"):
        run_scenario(loaded, output=tmp_path / "out", run_name="s", progress=False)
    partial = tmp_path / "out" / ".s.partial"
    assert len((partial / "rounds.csv").read_text().splitlines()) == 2  # header + round 0
    ckpt = torch.load(partial / CHECKPOINT, weights_only=False)
    assert ckpt["engine"]["next_round"] == 1
