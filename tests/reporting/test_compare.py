"""`fedsim compare`: several runs side by side, curves on shared axes, seed groups."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedsim.reporting import load_run, metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.compare import Group, build_compare
from fedsim.reporting.compare import label_groups as _labels
from fedsim.reporting.run import resolve_group
from tests.reporting.runfolder import MCU, PHONE, SBC, make_run


def test_compare_two_runs_side_by_side(compare_report: Any) -> None:
    html = compare_report.text
    assert "<title>fedsim comparison: FedMPQ vs FPQ8</title>" in html
    assert re.findall(r'<section id="([^"]+)"', html) == [
        "scenario", "headline", "accuracy", "energy", "fairness", "bits", "definitions"]
    assert re.findall(r'<figure class="fig" id="([^"]+)"', html) == [
        "fig-accuracy-time", "fig-accuracy-energy", "fig-accuracy-round",
        "fig-energy-classes", "fig-fairness", "fig-bits-trajectory"]
    # the headline table has one column per run, with the best value of a row in bold
    table = html.split('id="headline"', 1)[1].split("</table>", 1)[0]
    assert "<th" in table and ">FedMPQ</th>" in table and ">FPQ8</th>" in table
    acc_row = next(r for r in table.split("<tr>") if "final accuracy" in r)
    assert acc_row.count("<td") == 3 and "<b>" in acc_row
    assert "time to reach" in table and "energy to reach" in table
    md = (compare_report.out / "compare.md").read_text(encoding="utf-8")
    assert "| metric | FedMPQ | FPQ8 |" in md
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (compare_report.out / img).read_bytes()[:4] == b"\x89PNG"


def test_compare_csv_has_one_row_per_run(compare_report: Any) -> None:
    with open(compare_report.out / "compare.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["FedMPQ", "FPQ8"]
    assert [r["algorithm"] for r in rows] == ["fedmpq", "fpq8"]
    for r in rows:
        run = load_run(r["run_dir"])
        assert float(r["energy_j"]) == pytest.approx(float(run.rounds["energy_j"][-1]))
    assert int(rows[1]["infeasible"]) == 4


def test_curves_share_axes_and_colours(tmp_path: Path) -> None:
    runs = [load_run(make_run(tmp_path, f"{a}-s0", algorithm=a, rounds=3))
            for a in ("fedmpq", "aqfl", "fpq8")]
    groups = [Group(r.path, [r]) for r in runs]
    blocks, title, _ = build_compare(groups)
    assert title == "fedsim comparison: FedMPQ vs AQFL vs FPQ8"
    figs = {b.id: b.fig for b in blocks if isinstance(b, pg.Figure)}
    ax = figs["fig-accuracy-energy"].axes[0]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == ["FedMPQ", "AQFL", "FPQ8"]
    assert [ln.get_color() for ln in lines] == [style.method_color(a)
                                                for a in ("fedmpq", "aqfl", "fpq8")]
    assert re.fullmatch(r"Cumulative fleet energy \((m?J|kJ|MJ)\)", ax.get_xlabel())
    assert ax.get_ylabel() == "Test accuracy (%)"
    assert "Simulated wall-clock time" in figs["fig-accuracy-time"].axes[0].get_xlabel()


def test_same_method_twice_gets_distinct_labels_and_styles(tmp_path: Path) -> None:
    a = load_run(make_run(tmp_path, "a", groups=(PHONE, SBC), scenario_name="fleet-a"))
    b = load_run(make_run(tmp_path, "b", groups=(PHONE, MCU), scenario_name="fleet-b"))
    groups = [Group(a.path, [a]), Group(b.path, [b])]
    _labels(groups)
    assert [g.label for g in groups] == ["FedMPQ · fleet-a", "FedMPQ · fleet-b"]
    sa, sb = groups[0].series, groups[1].series
    assert sa is not None and sb is not None
    assert sa.color == sb.color == style.method_color("fedmpq")
    assert sa.linestyle != sb.linestyle


def test_seeds_parent_is_one_entry_with_a_band(tmp_path: Path) -> None:
    parent = tmp_path / "fedmpq-seeds"
    parent.mkdir()
    for seed in (0, 1, 2):
        make_run(parent, f"s{seed}", seed=seed, acc_max=0.88 + 0.01 * seed)
    (parent / "seeds_summary.csv").write_text("seed,final_accuracy\n", encoding="utf-8")
    paths = resolve_group(parent)
    assert [p.name for p in paths] == ["s0", "s1", "s2"]
    other = load_run(make_run(tmp_path, "fpq8", algorithm="fpq8"))
    groups = [Group(parent, [load_run(p) for p in paths]), Group(other.path, [other])]
    blocks, _, _ = build_compare(groups)
    fig = next(b.fig for b in blocks if isinstance(b, pg.Figure) and b.id == "fig-accuracy-time")
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "FedMPQ (mean of 3 seeds)" in labels
    assert fig.axes[0].collections  # the shaded band
    table = next(b for b in blocks if isinstance(b, pg.Table) and b.header[0] == "metric")
    acc = next(r for r in table.rows if r[0] == "final accuracy")
    assert "±" in acc[1] and "±" not in acc[2]


def test_band_is_mean_and_sd_over_the_common_range() -> None:
    x1, y1 = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])
    x2, y2 = np.array([0.0, 1.0, 3.0]), np.array([2.0, 3.0, 5.0])
    b = metrics.band([(x1, y1), (x2, y2)], points=3)
    assert b is not None
    grid, mean, sd = b
    assert grid.tolist() == [0.0, 1.0, 2.0]
    assert mean.tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert sd.tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert metrics.band([(x1, y1)]) is None


def test_compare_with_a_zero_round_run_and_a_float_run(tmp_path: Path) -> None:
    empty = load_run(make_run(tmp_path, "empty", rounds=0, planned_rounds=5))
    fp = load_run(make_run(tmp_path, "fp32", algorithm="fedavg"))
    mpq = load_run(make_run(tmp_path, "mpq"))
    groups = [Group(r.path, [r]) for r in (empty, fp, mpq)]
    blocks, _, _ = build_compare(groups)
    notes = " ".join(b.text for b in blocks if isinstance(b, pg.Note))
    assert "Zero completed rounds in: FedMPQ · empty" in notes
    bits = next(b for b in blocks if isinstance(b, pg.Figure) and b.id == "fig-bits-trajectory")
    labels = [ln.get_label() for ln in bits.fig.axes[0].get_lines()]
    assert "FedAvg (FP32)" not in labels and "FedMPQ · mpq" in labels
    table = next(b for b in blocks if isinstance(b, pg.Table) and b.header[0] == "metric")
    acc = next(r for r in table.rows if r[0] == "final accuracy")
    assert acc[1] == "—"
