"""`fedsim verify`: passes on a real run, names every kind of tampering, exits 2 on non-runs."""

from __future__ import annotations

import copy
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.cli.verify import verify
from fedsim.verify import RUN_FILES, verify_run
from tests.conftest import TINY, write_scenario

# FedMPQ (budget-bound downlink), a phone group at 3.5 bits and a deadline that cuts the
# phones off in their uplink: ok clients, stragglers, mixed bit vectors, idle energy.
VERIFY_SCENARIO: dict = copy.deepcopy(TINY)
VERIFY_SCENARIO["algorithm"]["name"] = "fedmpq"
VERIFY_SCENARIO["fleet"][1]["budget_bits"] = 3.5
VERIFY_SCENARIO["selection"] = {"deadline_s": 0.45}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import run_scenario

    tmp = tmp_path_factory.mktemp("verify_run")
    loaded = load_scenario(write_scenario(tmp, VERIFY_SCENARIO))
    outcome = run_scenario(loaded, output=tmp / "out", run_name="r", progress=False)
    return outcome.path


@pytest.fixture
def run(real_run: Path, tmp_path: Path) -> Path:
    """A private copy of the real run, free to tamper with."""
    return Path(shutil.copytree(real_run, tmp_path / "run"))


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(verify, list(args))
    out = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert "Traceback" not in out
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, out


# ------------------------------------------------------------------------------ file edits


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def edit_csv(path: Path, where: Callable[[dict[str, str]], bool],
             change: Callable[[dict[str, str]], None], count: int = 1) -> list[dict[str, str]]:
    header, rows = read_csv(path)
    hit = [r for r in rows if where(r)][:count]
    assert hit, f"no row to edit in {path.name}"
    for r in hit:
        change(r)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return hit


def read_events(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]


def write_events(run: Path, events: list[dict]) -> None:
    (run / "events.jsonl").write_text(
        "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))


def violations(run: Path) -> list[str]:
    code, out = invoke(str(run))
    assert code == 1, out
    lines = [x for x in out.splitlines() if x.strip()[:1].isdigit()]
    assert lines and "violation" in out.splitlines()[0]
    assert all(x.strip().split(".", 1)[0].isdigit() for x in lines)  # numbered
    return lines


def has(lines: list[str], *needles: str) -> bool:
    return any(all(n in x for n in needles) for x in lines)


def clients_rows(run: Path) -> list[dict[str, str]]:
    return read_csv(run / "clients.csv")[1]


# ------------------------------------------------------------------------------ passing


def test_verify_passes_on_real_run(real_run: Path) -> None:
    code, out = invoke(str(real_run))
    assert code == 0, out
    assert out.startswith("ok: ") and "checks on 2 rounds, 8 client-rounds" in out
    report = verify_run(real_run)
    assert report.ok and report.checks > 100
    # the fixture covers the interesting cases
    statuses = {r["status"] for r in clients_rows(real_run)}
    assert statuses == {"ok", "straggler"}
    assert any(float(r["idle_j"]) > 0 for r in clients_rows(real_run))


def test_verify_does_not_import_torch(real_run: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from fedsim.cli.verify import verify\n"
         f"try:\n    verify([{str(real_run)!r}])\n"
         "except SystemExit as e: print('EXIT', e.code)\n"
         "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"],
        capture_output=True, text=True,
    )
    assert "EXIT 0" in out.stdout and "NOTORCH" in out.stdout, out.stderr


def test_registered_in_main_cli(real_run: Path) -> None:
    from fedsim.cli import main

    if "verify" not in main.commands:
        pytest.skip("verify is not wired into fedsim.cli yet")
    res = CliRunner().invoke(main, ["verify", str(real_run)])
    assert res.exit_code == 0 and "ok:" in res.output


# ------------------------------------------------------------------------------ energy


def test_phase_energy_edit_is_caught(run: Path) -> None:
    (row,) = edit_csv(run / "clients.csv", lambda r: r["status"] == "ok",
                      lambda r: r.update(compute_j=repr(float(r["compute_j"]) + 0.5)))
    lines = violations(run)
    where = f"round {row['round']} client {row['client_id']}"
    assert has(lines, where, "compute_j", row["compute_j"], "compute_end event")
    assert has(lines, where, "energy_j", "downlink_j+compute_j+uplink_j+idle_j")


def test_total_energy_edit_is_caught_with_both_numbers(run: Path) -> None:
    edit_csv(run / "clients.csv", lambda r: r["round"] == "1" and r["client_id"] == "0",
             lambda r: r.update(energy_j="123.5"))
    lines = violations(run)
    assert has(lines, "round 1 client 0", "energy_j 123.5 in clients.csv",
               "downlink_j+compute_j+uplink_j+idle_j")
    assert has(lines, "round 1:", "round_energy_j", "sum of its 4 clients")


def test_straggler_energy_vs_event_is_caught(run: Path) -> None:
    (row,) = edit_csv(run / "clients.csv", lambda r: r["status"] == "straggler",
                      lambda r: r.update(idle_j="1.0",
                                         energy_j=repr(float(r["energy_j"]) + 1.0)))
    lines = violations(run)
    assert has(lines, f"round {row['round']} client {row['client_id']}", "straggler event")


def test_event_energy_edit_is_caught(run: Path) -> None:
    events = read_events(run)
    ev = next(e for e in events if e["kind"] == "uplink_end")
    ev["energy_j"] += 0.25
    write_events(run, events)
    lines = violations(run)
    assert has(lines, f"round {ev['round']} client {ev['client']}", "uplink_j", "uplink_end")


def test_non_numbers_in_events_are_violations_not_crashes(run: Path) -> None:
    events = read_events(run)
    up = next(e for e in events if e["kind"] == "uplink_end")
    up["energy_j"] = 10**400  # valid JSON, beyond any float
    end = next(e for e in events if e["kind"] == "round_end")
    end["energy_j"] = "lots"
    write_events(run, events)
    lines = violations(run)
    assert has(lines, f"round {up['round']} client {up['client']}", "no energy_j number")
    assert has(lines, f"round {end['round']}:", "'lots' in its round_end event")
    events[0]["t"] = 10**400
    write_events(run, events)
    code, out = invoke(str(run))
    assert code == 2 and "line 1" in out


def test_round_and_cumulative_energy_edits_are_caught(run: Path) -> None:
    edit_csv(run / "rounds.csv", lambda r: r["round"] == "1",
             lambda r: r.update(energy_j=repr(float(r["energy_j"]) + 2.0)))
    lines = violations(run)
    assert has(lines, "round 1:", "cumulative energy_j", "previous energy_j")
    assert has(lines, "summary.json energy_j")

    edit_csv(run / "rounds.csv", lambda r: r["round"] == "0",
             lambda r: r.update(round_energy_j="1.0"))
    lines = violations(run)
    assert has(lines, "round 0:", "round_energy_j 1 in rounds.csv", "sum of its")
    assert has(lines, "round 0:", "round_end event")


# ------------------------------------------------------------------------------ payload and bits


def test_payload_edit_is_caught(run: Path) -> None:
    (row,) = edit_csv(run / "clients.csv", lambda r: r["client_id"] == "2",
                      lambda r: r.update(bits_down_payload=str(int(r["bits_down_payload"]) + 32)))
    lines = violations(run)
    where = f"round {row['round']} client 2"
    assert has(lines, where, f"bits_down_payload {row['bits_down_payload']}",
               "computed from bits.csv")
    assert has(lines, where, "downlink_end event")


def test_event_payload_edit_is_caught(run: Path) -> None:
    events = read_events(run)
    ev = next(e for e in events if e["kind"] == "downlink_end")
    ev["payload_bits"] = 7
    write_events(run, events)
    assert has(violations(run), f"round {ev['round']} client {ev['client']}",
               "!= 7 in its downlink_end event")


def test_bit_over_budget_is_caught_for_fedmpq(run: Path) -> None:
    rows = clients_rows(run)
    tight = next(r for r in rows if float(r["budget_bits"]) < 8)
    cid, rnd = tight["client_id"], tight["round"]
    edit_csv(run / "bits.csv",
             lambda r: r["client_id"] == cid and r["round"] == rnd
             and r["layer"] == "classifier.fc1",
             lambda r: r.update(bits_down="8"))
    lines = violations(run)
    assert has(lines, f"round {rnd} client {cid}", "exceed budget_bits 3.5", "fedmpq")
    # the same bit also breaks the payload and the average
    assert has(lines, f"round {rnd} client {cid}", "bits_down_payload")
    assert has(lines, f"round {rnd} client {cid}", "avg_bits")


def test_budget_rules_follow_the_algorithm(run: Path) -> None:
    scen = yaml.safe_load((run / "scenario.yaml").read_text())
    # fedpaq quantizes the uplink at floor(budget): the FedMPQ phones upload 6-8 bit layers
    scen["algorithm"]["name"] = "fedpaq"
    (run / "scenario.yaml").write_text(yaml.safe_dump(scen))
    lines = violations(run)
    assert has(lines, "uplink bits", "floor(budget_bits) = 3", "fedpaq")
    assert all("floor(budget_bits)" in x for x in lines)
    # fedavg ignores budgets: a downlink over budget is fine (only bits-derived checks fail)
    scen["algorithm"]["name"] = "fedavg"
    (run / "scenario.yaml").write_text(yaml.safe_dump(scen))
    assert invoke(str(run))[0] == 0


# ------------------------------------------------------------------------------ time and counts


def test_swapped_event_times_are_caught(run: Path) -> None:
    events = read_events(run)
    i = next(i for i, e in enumerate(events)
             if e["kind"] == "downlink_end" and events[i + 1]["t"] > e["t"])
    events[i]["t"], events[i + 1]["t"] = events[i + 1]["t"], events[i]["t"]
    write_events(run, events)
    lines = violations(run)
    assert has(lines, f"events.jsonl line {i + 2}", "time went backwards")


def test_changed_participants_are_caught(run: Path) -> None:
    edit_csv(run / "rounds.csv", lambda r: r["round"] == "0",
             lambda r: r.update(participants="3"))
    lines = violations(run)
    assert has(lines, "round 0:", "participants 3 in rounds.csv != 2 clients with status ok")
    assert has(lines, "round 0:", "participants 3 in rounds.csv != 2 in its round_end event")


def test_changed_status_is_caught(run: Path) -> None:
    (row,) = edit_csv(run / "clients.csv", lambda r: r["status"] == "straggler",
                      lambda r: r.update(status="ok"))
    lines = violations(run)
    assert has(lines, f"round {row['round']}:", "participants 2 in rounds.csv != 3")
    assert has(lines, f"round {row['round']}:", "aggregate event clients")
    assert has(lines, f"round {row['round']}:", "stragglers 2 in rounds.csv != 1")


def test_changed_aggregate_and_stragglers_are_caught(run: Path) -> None:
    events = read_events(run)
    agg = next(e for e in events if e["kind"] == "aggregate")
    agg["clients"] = agg["clients"][:-1]
    write_events(run, events)
    edit_csv(run / "rounds.csv", lambda r: r["round"] == "1", lambda r: r.update(stragglers="0"))
    lines = violations(run)
    assert has(lines, f"round {agg['round']}:", "aggregate event clients")
    assert has(lines, "round 1:", "stragglers 0 in rounds.csv != 2")
    assert has(lines, "summary.json stragglers")


def test_round_time_edit_is_caught(run: Path) -> None:
    edit_csv(run / "rounds.csv", lambda r: r["round"] == "0",
             lambda r: r.update(sim_time_s="0.5"))
    lines = violations(run)
    assert has(lines, "round 0:", "sim_time_s 0.5 in rounds.csv", "round_end event time")


def test_missing_event_is_caught(run: Path) -> None:
    events = read_events(run)
    gone = next(e for e in events if e["kind"] == "compute_end")
    write_events(run, [e for e in events if e is not gone])
    lines = violations(run)
    where = f"round {gone['round']} client {gone['client']}"
    assert has(lines, where, "no compute_end event")


# ------------------------------------------------------------------------------ statuses


def test_unknown_status_counts_as_non_participant(run: Path) -> None:
    """A future status with its own closing event verifies clean (counted as lost)."""
    (row,) = edit_csv(run / "clients.csv", lambda r: r["status"] == "straggler",
                      lambda r: r.update(status="zzfuture"))
    events = read_events(run)
    for e in events:
        if (e["kind"] == "straggler" and e["round"] == int(row["round"])
                and e["client"] == int(row["client_id"])):
            e["kind"] = "zzfuture"
    write_events(run, events)
    code, out = invoke(str(run))
    assert code == 0, out


@pytest.mark.parametrize("status", ["offline", "battery", "zzfuture", "", "OK", "ok "])
def test_unknown_statuses_never_crash(run: Path, status: str) -> None:
    edit_csv(run / "clients.csv", lambda r: True, lambda r: r.update(status=status), count=3)
    code, out = invoke(str(run))
    assert code == 1 and "participants" in out


# ------------------------------------------------------------------------------ fleet dynamics
# System-only runs (no training: a second each): the engine's other paths.

SYSTEM_ONLY = {"enabled": True}
DYNAMIC: dict[str, dict] = {}
DYNAMIC["async"] = {  # FedBuff, Markov availability, failures: offline/dropout/stale tasks
    **copy.deepcopy(TINY), "rounds": 6, "mode": "async", "system_only": SYSTEM_ONLY,
    "fedbuff": {"buffer_k": 2, "concurrency": 3},
    "availability": {"model": "markov", "mean_on_s": 1.0, "mean_off_s": 0.5},
}
DYNAMIC["async"]["fleet"][1]["failure_prob"] = 0.3
DYNAMIC["sync"] = {  # over-commit, deadline, failures, batteries with recharge
    **copy.deepcopy(TINY), "rounds": 6, "system_only": SYSTEM_ONLY,
    "selection": {"per_round": 3, "over_commit": 0.7, "deadline_s": 0.6, "wait_s": 1.0,
                  "policy": "energy"},
}
DYNAMIC["sync"]["fleet"][0].update(count=4, failure_prob=0.3)
DYNAMIC["sync"]["fleet"][1].update(failure_prob=0.3, battery={
    "capacity_wh": 0.02, "initial": 1.0, "floor": 0.1,
    "recharge": {"period_s": 10, "start_s": 2, "duration_s": 5, "power_w": 0.5}})
DYNAMIC["stopped"] = {  # no battery can ever pay a round: battery_wait retries, then stopped
    **copy.deepcopy(TINY), "rounds": 3, "system_only": SYSTEM_ONLY,
    "selection": {"wait_s": 5.0, "max_wait_s": 20.0},
    "fleet": [{"profile": "midrange_phone", "count": 2, "budget_bits": 4,
               "battery": {"capacity_wh": 0.001}}],
}


@pytest.fixture(scope="module")
def dynamic_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import run_scenario

    tmp = tmp_path_factory.mktemp("dynamic")
    out = {}
    for name, data in DYNAMIC.items():
        loaded = load_scenario(write_scenario(tmp, data, f"{name}.yaml"))
        out[name] = run_scenario(loaded, output=tmp / "out", run_name=name,
                                 progress=False).path
    return out


def statuses_and_kinds(run: Path) -> tuple[set[str], set[str]]:
    return ({r["status"] for r in clients_rows(run)}, {e["kind"] for e in read_events(run)})


def test_verify_passes_on_dynamic_runs(dynamic_runs: dict[str, Path]) -> None:
    expect = {  # what each run must exercise (statuses, event kinds)
        "async": ({"ok", "offline"}, {"dispatch", "stale"}),
        "sync": ({"ok", "dropout", "straggler", "battery"}, {"battery_low"}),
        "stopped": (set(), {"battery_wait", "stopped"}),
    }
    for name, run in dynamic_runs.items():
        code, out = invoke(str(run))
        assert code == 0, f"{name}: {out}"
        statuses, kinds = statuses_and_kinds(run)
        assert expect[name][0] <= statuses and expect[name][1] <= kinds, (name, statuses, kinds)


@pytest.fixture
def async_run(dynamic_runs: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(dynamic_runs["async"], tmp_path / "run"))


def test_async_staleness_edit_is_caught(async_run: Path) -> None:
    (row,) = edit_csv(async_run / "clients.csv",
                      lambda r: r["status"] == "ok" and r["staleness"] != "0",
                      lambda r: r.update(staleness="0"))
    lines = violations(async_run)
    assert has(lines, f"round {row['round']}:", "(client, staleness) pairs")


def test_async_grouping_edit_is_caught(async_run: Path) -> None:
    edit_csv(async_run / "rounds.csv", lambda r: r["round"] == "1",
             lambda r: r.update(selected=str(int(r["selected"]) + 1)))
    lines = violations(async_run)
    assert has(lines, "rounds.csv 'selected' adds up to")


def test_async_energy_edit_is_caught(async_run: Path) -> None:
    (row,) = edit_csv(async_run / "clients.csv", lambda r: r["status"] == "offline",
                      lambda r: r.update(energy_j=repr(float(r["energy_j"]) + 1.0),
                                         idle_j="1.0"))
    lines = violations(async_run)
    assert has(lines, f"round {row['round']} client {row['client_id']}", "offline event")


def test_dynamic_status_counts_are_checked(dynamic_runs: dict[str, Path],
                                           tmp_path: Path) -> None:
    run = Path(shutil.copytree(dynamic_runs["sync"], tmp_path / "run"))
    (row,) = edit_csv(run / "rounds.csv", lambda r: r["dropouts"] != "0",
                      lambda r: r.update(dropouts=str(int(r["dropouts"]) + 1)))
    lines = violations(run)
    assert has(lines, f"round {row['round']}:", "dropouts", "status dropout")
    assert has(lines, "summary.json dropouts")


# ------------------------------------------------------------------------------ not a run


def test_not_a_run_folder_exits_2(tmp_path: Path) -> None:
    code, out = invoke(str(tmp_path))
    assert code == 2 and "not a run folder" in out and str(tmp_path) in out
    code, out = invoke(str(tmp_path / "absent"))
    assert code == 2 and "no such run folder" in out
    f = write_scenario(tmp_path, TINY)
    code, out = invoke(str(f))
    assert code == 2 and "expected a run folder" in out


@pytest.mark.parametrize("name", RUN_FILES)
def test_missing_file_exits_2(run: Path, name: str) -> None:
    (run / name).unlink()
    code, out = invoke(str(run))
    assert code == 2 and f"missing {name}" in out and str(run) in out


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("rounds.csv", "", "empty"),
        ("rounds.csv", "a,b\n1,2\n", "missing columns"),
        ("clients.csv", None, "energy_j"),  # a non-number in a numeric column
        ("bits.csv", "\xff\xfe\x00junk", None),
        ("events.jsonl", '{"t": 0.0, "round": 0, "kind": "round_start"}\n{oops\n', "line 2"),
        ("events.jsonl", '{"round": 0, "kind": "round_start"}\n', "'t'"),
        ("events.jsonl", "[1, 2]\n", "JSON object"),
        ("scenario.yaml", "a: [1\n", "not valid YAML"),
        ("summary.json", "[]", "expected a mapping"),
    ],
)
def test_malformed_files_exit_2(run: Path, name: str, text: str | None,
                                needle: str | None) -> None:
    path = run / name
    if text is None:
        edit_csv(path, lambda r: True, lambda r: r.update(energy_j="lots"))
    elif text.startswith("\xff"):
        path.write_bytes(b"\xff\xfe\x00junk")
    else:
        path.write_text(text)
    code, out = invoke(str(run))
    assert code == 2, out
    assert str(path) in out
    if needle:
        assert needle in out


# ------------------------------------------------------------------------------ robustness

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=5,
)
cells = st.one_of(st.text(max_size=6), st.integers().map(str), st.floats().map(repr),
                  st.just(""), st.sampled_from(["ok", "straggler", "nan", "inf", "-1", "32"]))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_never_crashes(real_run: Path, data: st.DataObject) -> None:
    """Any single corrupted cell, value or line gives exit 0, 1 or 2: never a traceback."""
    with tempfile.TemporaryDirectory() as t:
        run = Path(shutil.copytree(real_run, Path(t) / "run"))
        name = data.draw(st.sampled_from(sorted(RUN_FILES)))
        lines = (run / name).read_text(encoding="utf-8").splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        mode = data.draw(st.sampled_from(["cell", "line", "delete", "duplicate"]))
        if mode == "cell" and name == "events.jsonl":
            ev = json.loads(lines[i])
            ev[data.draw(st.sampled_from(sorted(ev)))] = data.draw(json_values)
            lines[i] = json.dumps(ev)
        elif mode == "cell" and name.endswith(".csv"):
            fields = next(csv.reader([lines[i]]))
            fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(cells)
            lines[i] = ",".join(fields)
        elif mode in ("cell", "line"):
            lines[i] = data.draw(st.text(max_size=30))
        elif mode == "delete":
            del lines[i]
        else:
            lines.insert(i, lines[i])
        (run / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        code, out = invoke(str(run))  # raises on any exception other than SystemExit
        assert code in (0, 1, 2), out
