"""Repeated runs over seeds, and client splits read from / exported to a file."""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main
from tests.conftest import TINY, write_scenario

FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


def test_seeds_summary_matches_per_seed_runs_and_single_runs(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, TINY)
    code, out = cli("run", str(path), "--seeds", "1-3", "-o", str(tmp_path / "m"),
                    "--name", "p")
    assert code == 0, out
    parent = tmp_path / "m" / "p"
    doc = json.loads((parent / "seeds_summary.json").read_text())
    finals = [json.loads((parent / f"s{s}" / "summary.json").read_text())["final_accuracy"]
              for s in (1, 2, 3)]
    assert doc["final"]["final_accuracy"]["mean"] == pytest.approx(statistics.fmean(finals))
    assert doc["final"]["final_accuracy"]["std"] == pytest.approx(statistics.stdev(finals))
    assert (parent / "seeds_summary.csv").read_text().count("\n") == 1 + TINY["rounds"]
    # seed 2 inside the group == a single run with seed 2
    code, out = cli("run", str(path), "--set", "seed=2", "-o", str(tmp_path / "single"),
                    "--name", "one")
    assert code == 0, out
    for f in FILES:
        assert (parent / "s2" / f).read_bytes() == (tmp_path / "single" / "one" / f).read_bytes()


def test_seeds_spec_errors(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, TINY)
    code, out = cli("run", str(path), "--seeds", "3-x")
    assert code == 2 and "--seeds" in out


def test_split_file_round_trip(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, TINY)
    assert cli("run", str(path), "-o", str(tmp_path / "a"), "--name", "a")[0] == 0
    split = tmp_path / "split.json"
    code, out = cli("partition", "export", str(tmp_path / "a" / "a"), "-o", str(split))
    assert code == 0, out
    data = copy.deepcopy(TINY)
    data["data"]["partition"] = {"kind": "file", "path": "split.json"}
    data["seed"] = TINY["seed"]
    path2 = write_scenario(tmp_path, data, "from_file.yaml")
    assert cli("run", str(path2), "-o", str(tmp_path / "b"), "--name", "b")[0] == 0
    # the same client datasets -> the same training -> identical records
    for f in FILES:
        assert (tmp_path / "a" / "a" / f).read_bytes() == (tmp_path / "b" / "b" / f).read_bytes()
    exported = json.loads((tmp_path / "b" / "b" / "partition.json").read_text())
    assert exported["train_indices_per_client"] == json.loads(split.read_text())[
        "train_indices_per_client"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"train_indices_per_client": [[0, 1], [2]]}, "fleet has 4 clients"),
        ({"train_indices_per_client": [[0], [1], [2], [99999]]}, "out of range"),
        ({"train_indices_per_client": [[0, 1], [1], [2], [3]]}, "more than once"),
        ({"train_indices_per_client": [[0], [1], [2], ["x"]]}, "list of integers"),
        ({"train_indices_per_client": [[0], [1], [2], [3]], "test_indices": [-1]},
         "out of range"),
        ({"wrong": 1}, "train_indices_per_client"),
        ({"train_indices_per_client": [[0], [1], [2], [3]],
          "class_counts_per_client": [[1], [1], [1]]}, "one list of counts per client"),
        ({"train_indices_per_client": [[0], [1], [2], [3]],
          "class_counts_per_client": [[5, 0], [0, 5], [1], [1]]}, "class counts"),
        ("not json {", "not valid JSON"),
    ],
)
def test_bad_split_files_exit_2(tmp_path: Path, content: object, needle: str) -> None:
    split = tmp_path / "split.json"
    split.write_text(content if isinstance(content, str) else json.dumps(content))
    data = copy.deepcopy(TINY)
    data["data"]["partition"] = {"kind": "file", "path": "split.json"}
    path = write_scenario(tmp_path, data)
    code, out = cli("run", str(path), "-o", str(tmp_path / "out"))
    assert code == 2 and needle in out and "split.json" in out, out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    code, out = cli("validate", str(path))  # validate reads the split file too
    assert code == 2 and needle in out and "split.json" in out, out


def test_split_file_metadata_is_read_and_ignored(tmp_path: Path) -> None:
    """Other codebases' split files carry metadata (a spec text, class counts): accepted;
    class counts that match the labels pass, unknown keys are ignored."""
    import numpy as np

    from fedsim.data import load_dataset

    train, _ = load_dataset("synthetic", seed=TINY["seed"], options=TINY["data"]["synthetic"])
    parts = [list(range(i, 240, 4)) for i in range(4)]
    counts = [np.bincount(train.y[p], minlength=4).tolist() for p in parts]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train_indices_per_client": parts, "spec": "drawn by hand",
                                 "class_counts_per_client": counts, "made_by": {"x": 1}}))
    data = copy.deepcopy(TINY)
    data["data"]["partition"] = {"kind": "file", "path": "split.json"}
    path = write_scenario(tmp_path, data)
    code, out = cli("run", str(path), "-o", str(tmp_path / "out"), "--name", "m")
    assert code == 0, out


@pytest.mark.parametrize(("normalize", "key"), [
    ({"mean": [0.1, 0.2], "std": [1.0, 1.0]}, "data.normalize.mean"),
    ({"mean": [0.1], "std": [0.0]}, "data.normalize.std"),
    ({"mean": [0.1], "std": [1.0, 2.0]}, "data.normalize"),
])
def test_fixed_normalisation_is_checked_by_validate(tmp_path: Path, normalize: dict,
                                                    key: str) -> None:
    data = copy.deepcopy(TINY)
    data["data"] = {"dataset": "digits", "normalize": normalize}
    path = write_scenario(tmp_path, data)
    code, out = cli("validate", str(path))
    assert code == 2 and key in out, out


def test_fixed_normalisation_is_applied() -> None:
    import numpy as np

    from fedsim.data import load_dataset

    own, _ = load_dataset("digits")
    fixed, _ = load_dataset("digits", options={"normalize": {"mean": [0.0], "std": [1.0]}})
    assert abs(float(own.x.mean())) < 1e-3  # the training split's own statistics
    assert float(fixed.x.min()) >= 0.0 and float(fixed.x.max()) <= 1.0  # x/scale only
    # the default is exactly the fixed form with the split's own mean and std
    assert np.allclose(own.x, (fixed.x - fixed.x.mean()) / fixed.x.std(), atol=1e-4)
