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
