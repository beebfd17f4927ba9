"""execution.batch_clients end to end: same run to float noise, recorded in the folder
(and only then), fixed on resume, refused where it cannot apply."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from fedsim.errors import InputError
from fedsim.runner.resume import prepare
from tests.conftest import TINY, write_scenario
from tests.e2e.test_determinism import run


def _scenario(tmp_path: Path, **algorithm: object) -> Path:
    data = copy.deepcopy(TINY)
    data["selection"] = {"per_round": 4}
    data["rounds"] = 3
    data["algorithm"] = {**data.get("algorithm", {}), "name": "fedavg", **algorithm}
    return write_scenario(tmp_path, data)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_batched_run_matches_sequential_to_float_noise(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    a = run(path, tmp_path / "out", name="seq")
    b = run(path, tmp_path / "out", "execution.batch_clients=3", name="batched")
    ra, rb = _rows(a / "rounds.csv"), _rows(b / "rounds.csv")
    assert len(ra) == len(rb) == 3
    for x, y in zip(ra, rb, strict=True):
        for key in x:
            if key in ("accuracy", "loss"):
                assert float(x[key]) == pytest.approx(float(y[key]), abs=2e-3), key
            else:  # the simulated side never sees how training ran
                assert x[key] == y[key], key
    for f in ("clients.csv", "bits.csv"):  # no training numbers in them
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    ea = [json.loads(line) for line in (a / "events.jsonl").read_text().splitlines()]
    eb = [json.loads(line) for line in (b / "events.jsonl").read_text().splitlines()]
    assert len(ea) == len(eb)
    for x, y in zip(ea, eb, strict=True):
        if x["kind"] == "round_end":
            assert x["accuracy"] == pytest.approx(y["accuracy"], abs=2e-3)
            x, y = {**x, "accuracy": 0, "loss": 0}, {**y, "accuracy": 0, "loss": 0}
        assert x == y
    # recorded where batching was used, and nowhere else
    sa = yaml.safe_load((a / "scenario.yaml").read_text())
    sb = yaml.safe_load((b / "scenario.yaml").read_text())
    assert "batch_clients" not in sa["execution"]
    assert sb["execution"]["batch_clients"] == 3
    assert "batch_clients" not in json.loads((a / "summary.json").read_text())["host"]
    assert json.loads((b / "summary.json").read_text())["host"]["batch_clients"] == 3


def test_resume_refuses_another_batch_size(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    done = run(path, tmp_path / "out", "execution.batch_clients=3", name="r")
    partial = done.parent / ".r.partial"  # pretend it was interrupted
    shutil.copytree(done, partial)
    (partial / "summary.json").unlink()
    for change in ("execution.batch_clients=1", "execution.batch_clients=4"):
        with pytest.raises(InputError) as err:
            prepare(partial, path, ["execution.batch_clients=3", change][1:])
        assert "execution.batch_clients" in str(err.value.key or err.value)
    loaded, _, _ = prepare(partial, path, ["execution.batch_clients=3"])
    assert loaded.scenario.execution.batch_clients == 3


@pytest.mark.parametrize("overrides,needle", [
    (["execution.batch_clients=2", "algorithm.name=fedmpq"], "supports fedavg, fedprox"),
    (["execution.batch_clients=2", "execution.workers=2"], "main process"),
])
def test_batching_is_refused_where_it_cannot_apply(tmp_path: Path, overrides: list[str],
                                                   needle: str) -> None:
    from click.testing import CliRunner

    from fedsim.cli import main

    path = _scenario(tmp_path)
    args = ["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "batch_clients" in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_batching_on_cuda_is_refused_at_the_door() -> None:
    from pydantic import ValidationError

    from fedsim.config.schema import ExecutionConfig

    with pytest.raises(ValidationError, match="batched training runs on the CPU"):
        ExecutionConfig(batch_clients=2, device="cuda")


def test_validate_refuses_batching_where_run_would(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fedsim.cli import main

    path = _scenario(tmp_path)
    res = CliRunner().invoke(main, ["validate", str(path), "--set",
                                    "execution.batch_clients=4"])
    assert res.exit_code == 0, res.output
    for bad, needle in (("algorithm.name=fedmpq", "supports fedavg, fedprox"),
                        ("model.name=resnet20", "has its own forward")):
        args = ["validate", str(path), "--set", "execution.batch_clients=4", "--set", bad]
        if bad.startswith("model"):
            args += ["--set", "model.options={}"]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and needle in res.output, res.output
        assert "execution.batch_clients" in res.output
