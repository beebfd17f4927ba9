"""Bad input: exit 2 with one message naming what is wrong, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli.report import compare, report
from fedsim.errors import InputError
from fedsim.reporting import RUN_FILES, load_run, write_report
from tests.reporting.runfolder import make_run


def fails(cmd: object, args: list[str]) -> str:
    res = CliRunner().invoke(cmd, args)  # type: ignore[arg-type]
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.output.startswith("error: ")
    return res.output


def test_missing_folder(tmp_path: Path) -> None:
    out = fails(report, [str(tmp_path / "nope")])
    assert "nope" in out and "no such folder" in out


def test_a_file_is_not_a_run(tmp_path: Path) -> None:
    f = tmp_path / "rounds.csv"
    f.write_text("round\n")
    assert "not a run folder" in fails(report, [str(f)])


def test_empty_folder_names_the_expected_files(tmp_path: Path) -> None:
    out = fails(report, [str(tmp_path)])
    assert "not a fedsim run folder" in out
    for name in RUN_FILES:
        assert name in out


def test_missing_files_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    (run / "events.jsonl").unlink()
    (run / "bits.csv").unlink()
    out = fails(report, [str(run)])
    assert "missing bits.csv, events.jsonl" in out
    assert "scenario.yaml" not in out.split("missing", 1)[1]


def test_unfinished_run_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path, ".r.partial")
    (run / "summary.json").unlink()
    out = fails(report, [str(run)])
    assert "missing summary.json" in out and "unfinished run" in out


def test_missing_column_is_named(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    lines = (run / "rounds.csv").read_text().splitlines()
    header = lines[0].split(",")
    i = header.index("energy_j")
    (run / "rounds.csv").write_text("\n".join(
        ",".join(c for j, c in enumerate(line.split(",")) if j != i) for line in lines) + "\n")
    out = fails(report, [str(run)])
    assert "rounds.csv" in out and "missing column energy_j" in out


def test_bad_number_names_line_and_column(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    text = (run / "clients.csv").read_text().splitlines()
    cells = text[2].split(",")
    cells[8] = "lots"  # energy_j
    text[2] = ",".join(cells)
    (run / "clients.csv").write_text("\n".join(text) + "\n")
    out = fails(report, [str(run)])
    assert "clients.csv" in out and "energy_j" in out and "line 3" in out and "'lots'" in out


@pytest.mark.parametrize(("name", "content", "expect"), [
    ("summary.json", "{not json", "not valid JSON"),
    ("summary.json", "[1, 2]", "expected a mapping"),
    ("scenario.yaml", "a: [1, 2", "not valid YAML"),
    ("rounds.csv", "", "empty file"),
])
def test_unreadable_files(tmp_path: Path, name: str, content: str, expect: str) -> None:
    run = make_run(tmp_path, "r")
    (run / name).write_text(content)
    out = fails(report, [str(run)])
    assert name in out and expect in out


def test_bad_event_line_is_named(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    with open(run / "events.jsonl", "a", encoding="utf-8") as f:
        f.write('{"t": 1.0, "round": 0, "kind": "round_start"\n')
    with pytest.raises(InputError, match=r"events.jsonl: line \d+: not valid JSON"):
        list(load_run(run).iter_events())
    out = fails(report, [str(run), "-o", str(tmp_path / "out")])
    assert "events.jsonl" in out


def test_a_parent_of_runs_points_to_compare(tmp_path: Path) -> None:
    make_run(tmp_path, "s0")
    make_run(tmp_path, "s1", seed=1)
    out = fails(report, [str(tmp_path)])
    assert "parent of 2 run folders" in out and "fedsim compare" in out


def test_output_that_is_a_file(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", rounds=0)
    f = tmp_path / "taken"
    f.write_text("x")
    res = CliRunner().invoke(report, [str(run), "-o", str(f)])  # click checks the flag
    assert res.exit_code == 2 and "is a file" in res.output and "Traceback" not in res.output
    with pytest.raises(InputError, match="output must be a folder"):
        write_report(run, f)


def test_compare_names_the_bad_run(tmp_path: Path) -> None:
    good = make_run(tmp_path, "good", rounds=0)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "rounds.csv").write_text("round\n")
    out = fails(compare, [str(good), str(bad), "-o", str(tmp_path / "c")])
    assert "bad" in out and "incomplete run folder" in out
    assert not (tmp_path / "c").exists()  # nothing written before every input is checked


def test_compare_needs_a_run(tmp_path: Path) -> None:
    res = CliRunner().invoke(compare, [])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_compare_refuses_the_same_run_twice(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", rounds=0)
    assert "given twice" in fails(compare, [str(run), str(run), "-o", str(tmp_path / "c")])


def test_summary_keys_may_be_missing(tmp_path: Path) -> None:
    """An older or partial summary.json: names fall back to scenario.yaml and the folder."""
    run = make_run(tmp_path, "r", rounds=1)
    (run / "summary.json").write_text(json.dumps({}))
    loaded = load_run(run)
    assert loaded.run_id == "r" and loaded.algorithm == "fedmpq" and loaded.seed == 0
