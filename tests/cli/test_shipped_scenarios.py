"""Every shipped scenario validates (data that is not on the machine gives a clear error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
PAPER = sorted((REPO / "scenarios" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenario_validates(path: Path) -> None:
    args = ["validate", str(path)]
    if "fashion" in path.name and not Path("/usr/share/datasets/fashion-mnist").exists():
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and "dataset-fashion-mnist" in res.output
        return
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output


def fake_cifar(root: Path) -> Path:
    c10 = root / "cifar-10-batches-py"
    c100 = root / "cifar-100-python"
    c10.mkdir(parents=True)
    c100.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (c10 / name).write_bytes(b"")
    for name in ("train", "test"):
        (c100 / name).write_bytes(b"")
    return root


def test_paper_scenarios(tmp_path: Path) -> None:
    assert len(PAPER) == 14  # 7 methods x CIFAR-10/100
    root = fake_cifar(tmp_path / "data")
    for path in PAPER:
        res = CliRunner().invoke(main, ["validate", str(path), "--set", f"data.root={root}"])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, ["validate", str(path), "--set",
                                        f"data.root={tmp_path / 'none'}"])
        assert res.exit_code == 2 and "set data.root" in res.output


REFERENCE = sorted((REPO / "scenarios" / "reference").glob("*.yaml"))
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("path", REFERENCE, ids=lambda p: p.name)
def test_reference_scenarios_validate(path: Path) -> None:
    res = CliRunner().invoke(main, ["validate", str(path)])
    if not FASHION.exists():
        assert res.exit_code == 2 and "dataset-fashion-mnist" in res.output
        return
    assert res.exit_code == 0, res.output


def test_reference_scenario_set() -> None:
    assert [p.stem for p in REFERENCE] == ["aqfl", "fedavg", "fedmpq", "fpq8"]


@pytest.mark.skipif(not FASHION.exists(), reason="needs Debian's dataset-fashion-mnist")
def test_reference_fedmpq_runs_one_round(tmp_path: Path) -> None:
    """The faithful scenario runs end to end on the real split file (one round: ~30 s)."""
    import csv
    import json

    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(REPO / "scenarios" / "reference" / "fedmpq.yaml"),
                                    "--set", "rounds=1", "-o", str(out), "--name", "r",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    run = out / "r"
    rows = list(csv.DictReader((run / "bits.csv").open()))
    by_client: dict[str, list[int]] = {}
    for r in rows:
        by_client.setdefault(r["client_id"], []).append(int(r["bits_down"]))
    budgets = [2, 2, 4, 4, 4, 6, 6, 6, 8, 8]
    for cid, bits in by_client.items():  # round 1: every layer at the client's budget
        assert set(bits) == {budgets[int(cid)]}, (cid, bits)
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["final_accuracy"] <= 1.0
    split = json.loads((REPO / "scenarios" / "reference" / "fmnist_split_6k_a05.json")
                       .read_text())
    samples = {r["client_id"]: int(r["samples"])
               for r in csv.DictReader((run / "clients.csv").open())}
    assert [samples[str(i)] for i in range(10)] == [len(x) for x in
                                                   split["train_indices_per_client"]]


METHODS = ("fedmpq", "aqfl", "fpq8", "fedavg", "fedprox", "fedpaq", "uveqfed")


@pytest.mark.parametrize("path", [*SCENARIOS, *REFERENCE, *PAPER], ids=lambda p: p.name)
def test_every_scenario_switches_to_every_method(path: Path, tmp_path: Path) -> None:
    """`--set algorithm.name=M` works on any shipped scenario: another method's keys are
    ignored with one note, never an error."""
    root = fake_cifar(tmp_path / "data")
    needs = "fashion" in path.name or path.parent.name == "reference"
    if needs and not FASHION.exists():
        pytest.skip("needs dataset-fashion-mnist")
    extra = ["--set", f"data.root={root}"] if path.parent.name == "paper" else []
    for m in METHODS:
        res = CliRunner().invoke(main, ["validate", str(path), "--set",
                                        f"algorithm.name={m}", *extra])
        assert res.exit_code == 0, (m, res.output)
        assert "error" not in res.output


def test_a_key_no_method_takes_is_an_error_with_its_full_path(tmp_path: Path) -> None:
    path = REPO / "scenarios" / "heterogeneous_40.yaml"
    res = CliRunner().invoke(main, ["validate", str(path), "--set", "algorithm.lamb=0.1"])
    assert res.exit_code == 2 and "algorithm.lamb" in res.output and "lam" in res.output
    res = CliRunner().invoke(main, ["validate", str(path), "--set", "algorithm.name=fedavg"])
    assert res.exit_code == 0
    assert "algorithm.lam" in res.output and "not fedavg: ignored" in res.output
