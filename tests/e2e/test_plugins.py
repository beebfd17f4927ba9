"""Plug-ins: a user's model, dataset and algorithm by import path or entry point."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import fedsim
from fedsim.cli import main
from tests.conftest import TINY, write_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture
def mypkg(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return EXAMPLES


def test_the_example_scenario_runs_all_three_kinds(mypkg: Path, tmp_path: Path) -> None:
    run = fedsim.run(mypkg / "scenario.yaml", output=tmp_path)
    assert run.path.name == "plugins-FedAvgM-s1"
    assert run.summary["final_accuracy"] > 0.5  # 4 classes: well above chance
    assert run.summary["model"]["quantized_layers"] == 2
    assert run.scenario["algorithm"]["server_momentum"] == 0.5
    assert run.verify().ok


def test_a_plugin_model_under_fedmpq(mypkg: Path, tmp_path: Path) -> None:
    data = copy.deepcopy(TINY)
    data["model"] = {"name": "mypkg.models:build_mlp", "options": {"hidden": 16}}
    data["algorithm"] = {**data["algorithm"], "name": "fedmpq"}
    run = fedsim.run(data, output=tmp_path)
    bits = {r["bits_down"] for r in run.rows("bits")}
    assert bits and max(b for b in bits if b is not None) <= 8  # bit planes, not float


def test_installed_entry_points(mypkg: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A package that registers entry points is used by name."""
    dist = tmp_path / "site" / "mypkg-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[fedsim.models]\nmlp = mypkg.models:build_mlp\n"
        "[fedsim.datasets]\nblobs = mypkg.data:load_blobs\n"
        "[fedsim.algorithms]\nfedavgm = mypkg.algos:FedAvgM\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    data = yaml.safe_load((mypkg / "scenario.yaml").read_text())
    data["model"]["name"], data["data"]["dataset"] = "mlp", "blobs"
    data["algorithm"]["name"] = "fedavgm"
    data["rounds"] = 2
    run = fedsim.run(data, output=tmp_path / "out")
    assert run.path.name == "plugins-fedavgm-s1" and run.verify().ok


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("model.name", "nosuchmod:build", "cannot import nosuchmod"),
    ("model.name", "mypkg.models:nothing", "has no attribute 'nothing'"),
    ("model.name", "mypkg.data:CLASSES", "not a function"),
    ("model.options.hidden", "0", "hidden must be >= 1"),
    ("model.options.width", "3", "refused its options"),
    ("data.dataset", "mypkg.models:build_mlp", "failed"),
    ("algorithm.name", "mypkg.models:build_mlp", "not a subclass"),
    ("algorithm.server_momentum", "2", "algorithm.server_momentum"),
])
def test_a_broken_plugin_exits_2_naming_the_key(mypkg: Path, tmp_path: Path, key: str,
                                                value: str, needle: str) -> None:
    res = CliRunner().invoke(main, ["run", str(mypkg / "scenario.yaml"), "-o",
                                    str(tmp_path / "out"), "--set", f"{key}={value}"])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert key.split(".")[0] in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_names_still_list_the_builtins(tmp_path: Path) -> None:
    data = copy.deepcopy(TINY)
    data["model"] = {"name": "cnnn"}
    res = CliRunner().invoke(main, ["validate", str(write_scenario(tmp_path, data))])
    assert res.exit_code == 2 and "resnet20" in res.output and "module:function" in res.output
