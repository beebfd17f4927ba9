"""``budget_bits: auto`` and ``fedsim plan``: budgets derived from memory, deadline, energy."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main
from fedsim.config.loader import load_scenario
from fedsim.errors import InputError
from fedsim.runner.build import build_run
from fedsim.runner.simulation import run_scenario
from fedsim.verify import verify_run
from tests.conftest import TINY, write_scenario


def _auto(**top: object) -> dict:
    data = copy.deepcopy(TINY)
    data["algorithm"] = {**data["algorithm"], "name": "aqfl"}
    data["budget_bits"] = "auto"
    for g in data["fleet"]:
        g.pop("budget_bits", None)
    data.update(top)
    return data


def _plans(tmp_path: Path, data: dict, *overrides: str) -> list:
    return build_run(load_scenario(write_scenario(tmp_path, data), list(overrides))).plans


def _budgets(plans: list) -> list[float | None]:
    return [p.budget for p in plans]


def test_auto_takes_the_largest_budget_that_fits(tmp_path: Path) -> None:
    plans = _plans(tmp_path, _auto())
    assert _budgets(plans) == [8.0] * 4  # nothing binds on these boards and phones
    for p in plans:
        assert all(o.fits for o in p.options)
        assert p.reason == "the method's highest precision fits"


def test_half_the_memory_never_raises_a_budget(tmp_path: Path) -> None:
    """Halve the Pis' memory again and again (the phones keep theirs): their budget never
    rises, and once memory binds it falls."""
    data = _auto()
    need = [o.memory_bytes for o in _plans(tmp_path, data)[0].options]  # 8 bits .. 1 bit
    previous, seen = 8.0, set()
    for usable in (need[0], need[0] // 2 + need[-1] // 2, need[-1], need[-1] // 2):
        g = copy.deepcopy(data)
        g["fleet"][0]["override"] = {"memory": {"ram_mb": usable / 2**20 / 0.5,
                                                "usable_fraction": 0.5}}
        plans = _plans(tmp_path, g)
        b = plans[0].budget or 0.0
        assert b <= previous, (usable, b, previous)
        assert [p.budget for p in plans[2:]] == [8.0, 8.0]  # the phones are untouched
        previous = b
        seen.add(b)
    assert 8.0 in seen and 0.0 in seen and len(seen) >= 3  # fits all, some, none


def test_tighter_deadline_never_raises_a_budget(tmp_path: Path) -> None:
    data = _auto()
    loose = _plans(tmp_path, data)
    t8 = [p.options[0].time_s for p in loose]  # 8-bit round times
    previous = None
    for deadline in (max(t8) * 2, max(t8) * 0.999, min(t8) * 0.999, min(t8) * 0.5):
        try:
            budgets = [b or 0 for b in _budgets(_plans(tmp_path, data,
                                                       f"selection.deadline_s={deadline}"))]
        except InputError as exc:  # nobody fits any more
            assert "deadline" in str(exc)
            budgets = [0, 0, 0, 0]
        if previous is not None:
            assert all(b <= a for a, b in zip(previous, budgets, strict=True))
        previous = budgets
    assert previous == [0, 0, 0, 0]


def test_a_device_that_fits_nothing_is_excluded_with_its_reason(tmp_path: Path) -> None:
    data = _auto()
    data["fleet"][1]["override"] = {"memory": {"ram_mb": 0.01}}  # the phones: 10 KB
    plans = _plans(tmp_path, data)
    assert _budgets(plans)[:2] == [8.0, 8.0] and _budgets(plans)[2:] == [None, None]
    assert "fits no precision" in plans[2].reason and "needs" in plans[2].reason
    out = run_scenario(load_scenario(write_scenario(tmp_path, data)), output=tmp_path / "o",
                       progress=False)
    with (out.path / "clients.csv").open() as f:
        seen = {int(r["client_id"]) for r in csv.DictReader(f)}
    assert seen <= {0, 1}  # the excluded phones were never scheduled
    excluded = out.summary["excluded_clients"]
    assert [e["client_id"] for e in excluded] == [2, 3]
    assert "fits no precision" in excluded[0]["reason"]
    assert verify_run(out.path).ok


def test_nobody_fits_exits_2_with_the_binding_constraint_per_class(tmp_path: Path) -> None:
    data = _auto()
    data["selection"] = {"deadline_s": 1e-6}
    path = write_scenario(tmp_path, data)
    for cmd in (["run", str(path), "-o", str(tmp_path / "out")], ["plan", str(path)]):
        res = CliRunner().invoke(main, cmd)
        assert res.exit_code == 2, res.output
        assert "no device can join at any precision" in res.output
        assert "sbc:" in res.output and "phone:" in res.output and "deadline" in res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_plan_numbers_equal_what_the_run_charges(tmp_path: Path) -> None:
    """Rerun the cost model's plan against clients.csv: the first round of an AQFL run
    (uniform bits, no precision reduction) charges exactly the plan's chosen option."""
    data = _auto(rounds=1)
    need = [o.memory_bytes for o in _plans(tmp_path, data)[0].options]
    usable = (need[0] + need[-1]) / 2  # the Pis fit some budgets, not all
    data["fleet"][0]["override"] = {"memory": {"ram_mb": usable / 2**20 / 0.5,
                                               "usable_fraction": 0.5}}
    path = write_scenario(tmp_path, data)
    plans = {p.client.client_id: p for p in _plans(tmp_path, data)}
    assert {p.budget for p in plans.values()} != {8.0}  # a constraint binds somewhere
    out = run_scenario(load_scenario(path), output=tmp_path / "o", progress=False)
    with (out.path / "clients.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    for r in rows:
        p = plans[int(r["client_id"])]
        o = next(o for o in p.options if o.budget == p.budget)
        assert float(r["budget_bits"]) == p.budget
        assert float(r["compute_s"]) == pytest.approx(o.compute_s, rel=1e-9, abs=1e-9)
        assert float(r["comm_s"]) == pytest.approx(o.comm_s, rel=1e-9, abs=1e-9)
        spent = sum(float(r[k]) for k in ("downlink_j", "compute_j", "uplink_j"))
        assert spent == pytest.approx(o.energy_j, rel=1e-9, abs=1e-9)
    with (out.path / "plan.csv").open() as f:
        plan_rows = list(csv.DictReader(f))
    assert {r["group"] for r in plan_rows} == {"raspberry_pi_4", "midrange_phone"}
    assert sum(int(r["chosen"]) for r in plan_rows) == 2  # one per group's first client


def test_energy_allowance_and_battery_bind(tmp_path: Path) -> None:
    data = _auto()
    base = _plans(tmp_path, data)
    e1 = base[0].options[-1].energy_j  # the cheapest round of a Pi
    g = copy.deepcopy(data)
    g["fleet"][0]["budget_bits"] = {"auto": True, "energy_j": e1 * 0.5}
    plans = _plans(tmp_path, g)
    assert plans[0].budget is None and "allowance" in plans[0].reason
    g = copy.deepcopy(data)
    e8 = base[0].options[0].energy_j
    assert e8 > e1
    g["fleet"][0]["battery"] = {"capacity_wh": (e1 + e8) / 2 / 3600, "initial": 1.0,
                                "floor": 0.0}
    plans = _plans(tmp_path, g)
    assert plans[0].budget is not None and 1 <= plans[0].budget < 8
    assert "breaks battery" in plans[0].reason


def test_fixed_budgets_are_priced_and_kept(tmp_path: Path) -> None:
    data = copy.deepcopy(TINY)
    data["fleet"][1]["budget_bits"] = 3.5
    data["algorithm"] = {**data["algorithm"], "name": "fedmpq"}
    plans = _plans(tmp_path, data)
    assert _budgets(plans) == [8.0, 8.0, 3.5, 3.5]
    assert any(o.budget == 3.5 for o in plans[2].options)
    assert plans[2].reason.startswith("fixed by the scenario")


def test_plan_command_tables_and_csv(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, _auto())
    res = CliRunner().invoke(main, ["plan", str(path), "--clients", "-o",
                                    str(tmp_path / "plan.csv")])
    assert res.exit_code == 0, res.output
    assert "auto budget: 8 x2" in res.output and "client 3:" in res.output
    rows = list(csv.DictReader((tmp_path / "plan.csv").open()))
    assert len(rows) == 4 * 8  # every client, budgets 1..8
    res = CliRunner().invoke(main, ["plan", str(path), "--set", "budget_bits=lots"])
    assert res.exit_code == 2 and "budget_bits" in res.output


def test_budget_key_is_validated(tmp_path: Path) -> None:
    data = _auto()
    data["fleet"][0]["budget_bits"] = {"auto": True, "adapt": "sometimes"}
    res = CliRunner().invoke(main, ["validate", str(write_scenario(tmp_path, data))])
    assert res.exit_code == 2 and "fleet[0].budget_bits" in res.output, res.output
    assert "Traceback" not in res.output
    summary_keys = json.dumps(_auto())
    assert "auto" in summary_keys


def test_battery_adaptive_budget_steps_down_instead_of_dropping_out(tmp_path: Path) -> None:
    """One battery-powered microcontroller, run twice: at a fixed 8 bits it is refused once
    its battery cannot pay an 8-bit round; adapting, it steps down to the precision the
    battery can still pay and trains one more round (its budget logged in clients.csv)."""
    data = _auto(rounds=6)
    data["fleet"] = [{"profile": "stm32h7a3", "count": 1, "name": "mcu", "budget_bits": 8}]
    options = _plans(tmp_path, data)[0].options
    e8, e1 = options[0].energy_j, options[-1].energy_j
    assert e8 > e1
    data["fleet"][0]["battery"] = {"capacity_wh": (3 * e8 + (e1 + e8) / 2) / 3600,
                                   "initial": 1.0, "floor": 0.0}

    def run(budget: object, name: str) -> list[dict[str, str]]:
        d = copy.deepcopy(data)
        d["fleet"][0]["budget_bits"] = budget
        out = run_scenario(load_scenario(write_scenario(tmp_path, d, f"{name}.yaml")),
                           output=tmp_path / "o", run_name=name, progress=False)
        assert verify_run(out.path).ok, verify_run(out.path).render()
        return list(csv.DictReader((out.path / "clients.csv").open()))

    fixed = run(8, "fixed")
    adaptive = run({"auto": True, "adapt": "battery"}, "adaptive")
    def ok(rows: list[dict[str, str]]) -> int:
        return sum(r["status"] == "ok" for r in rows)

    assert ok(fixed) == 3 and ok(adaptive) == 4
    budgets = [float(r["budget_bits"]) for r in adaptive]
    assert budgets[:3] == [8.0, 8.0, 8.0] and 1 <= budgets[3] < 8
    assert budgets == sorted(budgets, reverse=True)


def test_system_only_plans_the_bits_the_port_sends(tmp_path: Path) -> None:
    """Under system_only.bits=max every client trains at 8 bits whatever its budget, so
    auto can only choose 8 (or exclude); under float, 32."""
    data = _auto()
    for bits, choice in (("max", 8.0), ("float", 32.0), ("budget", 8.0)):
        plans = _plans(tmp_path, data, "system_only.enabled=true", f"system_only.bits={bits}")
        assert {o.budget for o in plans[0].options} == (
            {choice} if bits != "budget" else {1, 2, 3, 4, 5, 6, 7, 8})
        assert plans[0].budget == choice


def test_async_runs_ignore_the_deadline(tmp_path: Path) -> None:
    data = _auto()
    t8 = _plans(tmp_path, data)[0].options[0].time_s
    with pytest.raises(InputError, match="deadline"):  # sync: nobody meets it
        _plans(tmp_path, data, f"selection.deadline_s={t8 / 10}")
    asyn = _plans(tmp_path, data, f"selection.deadline_s={t8 / 10}", "mode=async")
    assert [p.budget for p in asyn] == [8.0] * 4
