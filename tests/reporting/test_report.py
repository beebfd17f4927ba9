"""`fedsim report`: every section and figure, the same numbers in HTML, Markdown and CSV."""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from fedsim.cli.report import report
from fedsim.reporting import load_run, metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.report import ENERGY_COLUMNS, build_report, write_energy_csv
from tests.reporting.runfolder import PHONE, SBC, make_run

SECTIONS = ["scenario", "headline", "accuracy", "energy", "timeline", "bits", "fairness",
            "definitions"]
FIGURES = ["fig-accuracy-time", "fig-accuracy-energy", "fig-energy-classes", "fig-timeline",
           "fig-bits-heatmap", "fig-bits-trajectory", "fig-fairness"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<figure class="fig" id="([^"]+)"', html)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------
def test_report_has_every_section_and_figure(het_report: Any) -> None:
    html = het_report.text
    assert re.findall(r'<section id="([^"]+)"', html) == SECTIONS
    assert figure_ids(html) == FIGURES
    for fid in FIGURES:
        block = html.split(f'id="{fid}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in block and "<figcaption>" in block
    assert "<title>fedsim report: tiny-fedmpq-s0</title>" in html
    # what a researcher reads first
    for text in ("Final accuracy", "Best accuracy", "Simulated time", "Fleet energy",
                 "Energy per accuracy point", "Stragglers / lost", "Participation"):
        assert text in html


def test_report_is_self_contained(het_report: Any) -> None:
    html = het_report.text
    assert "<script" not in html and "<link" not in html
    # no fetchable reference: only SVG namespace identifiers mention http
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"#][^"]*)"', html)
    assert all(r.startswith("data:") for r in refs), refs
    assert "url(http" not in html and "@import" not in html
    # ids stay unique although several SVGs share the page
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_headline_numbers_match_the_run(het_report: Any) -> None:
    run = load_run(het_report.run)
    h = metrics.headline(run)
    rounds = read_rows(het_report.run / "rounds.csv")
    assert h.final_accuracy == pytest.approx(float(rounds[-1]["accuracy"]))
    assert h.energy_j == pytest.approx(float(rounds[-1]["energy_j"]))
    assert h.sim_time_s == pytest.approx(float(rounds[-1]["sim_time_s"]))
    assert h.stragglers == 1 and h.infeasible == 1 and h.lost == 0
    assert h.client_rounds == 18 and h.aggregated == 16
    assert h.j_per_point == pytest.approx(h.energy_j / (100 * h.final_accuracy))
    md = (het_report.out / "report.md").read_text(encoding="utf-8")
    for shown in (style.fmt_pct(h.final_accuracy), style.fmt_energy(h.energy_j),
                  style.fmt_time(h.sim_time_s)):
        assert shown in het_report.text and shown in md


def test_markdown_has_the_same_sections_and_png_figures(het_report: Any) -> None:
    md = (het_report.out / "report.md").read_text(encoding="utf-8")
    for title in ("## Scenario", "## Headline numbers", "## Per-client timeline",
                  "## Bit-widths", "## Fairness across device classes"):
        assert title in md
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert [Path(i).stem for i in images] == [f.removeprefix("fig-") for f in FIGURES]
    for img in images:
        data = (het_report.out / img).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_energy_csv_adds_up(het_report: Any) -> None:
    rows = read_rows(het_report.out / "energy.csv")
    assert list(rows[0]) == ENERGY_COLUMNS
    clients = [r for r in rows if r["scope"] == "client"]
    classes = {r["device_class"]: r for r in rows if r["scope"] == "device_class"}
    (fleet,) = [r for r in rows if r["scope"] == "fleet"]
    assert len(clients) == 6 and set(classes) == {"phone", "sbc"}
    phases = ("compute_j", "downlink_j", "uplink_j", "idle_j")
    for r in [*clients, *classes.values(), fleet]:
        assert float(r["energy_j"]) == pytest.approx(sum(float(r[p]) for p in phases))
        assert float(r["busy_s"]) == pytest.approx(float(r["compute_s"]) + float(r["comm_s"]))
    for cls, row in classes.items():
        mine = [r for r in clients if r["device_class"] == cls]
        assert float(row["energy_j"]) == pytest.approx(sum(float(r["energy_j"]) for r in mine))
    last = read_rows(het_report.run / "rounds.csv")[-1]
    assert float(fleet["energy_j"]) == pytest.approx(float(last["energy_j"]))
    src = read_rows(het_report.run / "clients.csv")
    assert float(fleet["bytes_up"]) == pytest.approx(
        sum(float(r["bits_up_payload"]) for r in src) / 8)
    assert fleet["stragglers"] == "1" and fleet["infeasible"] == "1"


def test_default_output_is_inside_the_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", groups=(PHONE,), rounds=0)  # no figures: fast
    res = CliRunner().invoke(report, [str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "report" / "report.html").is_file()
    assert (run / "report" / "energy.csv").is_file()
    assert "report.html" in res.output


# ---------------------------------------------------------------------------------------------
# Metrics behind the figures
# ---------------------------------------------------------------------------------------------
def test_timeline_shows_phases_waits_and_failures(het_report: Any) -> None:
    run = load_run(het_report.run)
    tl = metrics.timeline(run)
    assert tl.rounds == [0, 1, 2]
    assert len(tl.clients) == 6
    assert [tl.classes[c] for c in tl.clients] == ["phone"] * 3 + ["sbc"] * 3
    cut = [s for s in tl.segments if s.failed]
    assert [(s.client, s.round, s.kind) for s in cut] == [(4, 1, "compute")]
    assert cut[0].end == pytest.approx(tl.bounds[1][0] + 20.0)  # the deadline
    assert {(m.client, m.round, m.kind) for m in tl.marks} == {(4, 1, "straggler"),
                                                                (1, 2, "infeasible")}
    idle = [s for s in tl.segments if s.kind == "idle"]
    assert idle and all(s.end == pytest.approx(tl.bounds[s.round][1]) for s in idle)
    # a client's phases follow each other without gaps or overlap
    for cid in tl.clients:
        for r in tl.rounds:
            mine = sorted((s for s in tl.segments if s.client == cid and s.round == r),
                          key=lambda s: s.start)
            for a, b in itertools.pairwise(mine):
                assert b.start == pytest.approx(a.end, abs=1e-6)


def test_timeline_keeps_failures_when_clients_are_many(tmp_path: Path) -> None:
    big = PHONE.__class__(**{**PHONE.__dict__, "count": 30})
    run = load_run(make_run(tmp_path, "big", groups=(big, SBC), slow=((1, 31),)))
    tl = metrics.timeline(run, max_clients=12)
    assert len(tl.clients) == 12 and tl.total_clients == 33
    assert 31 in tl.clients
    assert {tl.classes[c] for c in tl.clients} == {"phone", "sbc"}


def test_bit_matrix_is_last_round_clients_by_layers(het_report: Any) -> None:
    run = load_run(het_report.run)
    bm = metrics.bit_matrix(run)
    assert bm is not None and bm.round == 2
    assert bm.layers == ["conv1", "layer1.conv", "layer2.conv", "fc"]
    assert bm.down.shape == (6, 4)
    # the infeasible client (1) reported nothing up
    assert np.isnan(bm.up[bm.clients.index(1)]).all()
    assert not np.isnan(bm.down).any()
    assert metrics.has_quantized_bits(run)


def test_float_run_says_there_are_no_bits_to_show(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, "fp", algorithm="fedavg"))
    blocks, _, _ = build_report(run)
    ids = [b.id for b in blocks if isinstance(b, pg.Figure)]
    assert ids == [f for f in FIGURES if "bits" not in f]
    notes = " ".join(b.text for b in blocks if isinstance(b, pg.Note))
    assert "32-bit float" in notes


def test_dropouts_are_counted_and_drawn(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, "drop", dropouts=((2, 0),), slow=()))
    h = metrics.headline(run)
    assert (h.battery, h.dropouts, h.stragglers) == (1, 0, 0)  # lost to its battery
    assert metrics.status_kinds(run) == ["ok", "battery"]
    tl = metrics.timeline(run)
    cut = [s for s in tl.segments if s.failed]
    assert [(s.client, s.round, s.kind) for s in cut] == [(0, 2, "compute")]
    assert [(m.client, m.kind) for m in tl.marks] == [(0, "battery")]
    blocks, _, _ = build_report(run)
    fairness = next(b for b in blocks if isinstance(b, pg.Table) and "dropouts" in b.header)
    phone = next(r for r in fairness.rows if r[0] == "phone")
    assert phone[fairness.header.index("dropouts")] == "1"


def test_run_without_accuracy_has_no_accuracy_figures(tmp_path: Path) -> None:
    path = make_run(tmp_path, "sysonly")
    lines = (path / "rounds.csv").read_text().splitlines()
    col = lines[0].split(",").index("accuracy")
    rows = [line.split(",") for line in lines[1:]]
    for r in rows:
        r[col] = ""
    (path / "rounds.csv").write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    run = load_run(path)
    h = metrics.headline(run)
    assert h.final_accuracy is None and h.best_accuracy is None and h.j_per_point is None
    blocks, _, _ = build_report(run)
    ids = [b.id for b in blocks if isinstance(b, pg.Figure)]
    assert ids == [f for f in FIGURES if "accuracy" not in f]
    assert any("recorded no test accuracy" in b.text for b in blocks if isinstance(b, pg.Note))


def test_zero_completed_rounds_still_gets_a_report(tmp_path: Path) -> None:
    run = make_run(tmp_path, "empty", rounds=0, planned_rounds=3)
    out = tmp_path / "out"
    res = CliRunner().invoke(report, [str(run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "completed zero rounds" in html
    assert re.findall(r'<section id="([^"]+)"', html) == SECTIONS
    assert figure_ids(html) == []
    assert "0 completed of 3 planned" in html
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "completed zero rounds" in md
    rows = read_rows(out / "energy.csv")
    assert [r["scope"] for r in rows] == ["fleet"]


# ---------------------------------------------------------------------------------------------
# A run folder written by the real engine and run-folder writer (no torch)
# ---------------------------------------------------------------------------------------------
class _Cost:
    """Client i computes (i + 1) s per step at 8 bits; 0.5 s transfers; client 3 too big."""

    def compute(self, cid: int, bits: Sequence[int], steps: int) -> Any:
        from fedsim.engine.types import PhaseCost

        t = (cid + 1) * steps * sum(bits) / (8 * len(bits))
        return PhaseCost(t, 3.0 * t)

    def transfer(self, cid: int, bits: Sequence[int], direction: str) -> Any:
        from fedsim.engine.types import PhaseCost

        return PhaseCost(0.5, 0.8, payload_bits=sum(bits) * 1000)

    def memory_problem(self, cid: int, bits: Sequence[int]) -> str | None:
        return "needs 300 MB, usable 200 MB" if cid == 3 else None

    def idle_power_w(self, cid: int) -> float:
        return 0.2

    def avg_bits(self, bits: Sequence[int]) -> float:
        return sum(bits) / len(bits)


class _Port:
    def downlink_bits(self, round: int, ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        return {cid: (8, 4 if cid % 2 else 2, 8) for cid in ids}

    def submit(self, item: Any) -> Future[Any]:
        from fedsim.engine.types import WorkResult

        fut: Future[Any] = Future()
        up = tuple(max(1, b - 1) for b in item.bits)
        fut.set_result(WorkResult(item.round, item.client_id, up, item.samples, 0.0))
        return fut

    def discard(self, key: tuple[int, int, int]) -> None:
        pass

    def aggregate(self, round: int, ids: Sequence[int]) -> None:
        pass

    def evaluate(self, round: int) -> Any:
        from fedsim.engine.types import EvalResult

        return EvalResult(accuracy=0.3 + 0.2 * round, loss=1.0 / (round + 1))


def test_report_of_a_run_written_by_the_engine(tmp_path: Path) -> None:
    engine = pytest.importorskip("fedsim.engine.core")
    rundir = pytest.importorskip("fedsim.records.writer")
    from fedsim.engine.types import ClientDesc

    folder = rundir.RunFolder(tmp_path, "engine-run")
    folder.layer_params = [("conv1", 100), ("conv2", 2000), ("fc", 300)]
    clients = [ClientDesc(i, "pis" if i < 2 else "mcus", "raspberry_pi_4" if i < 2 else "stm32",
                          "sbc" if i < 2 else "mcu", 4, 50 + i) for i in range(4)]
    eng = engine.Engine(engine.EngineConfig(seed=1, rounds=3, per_round=4, epochs=1,
                                            deadline_s=3.0),
                        clients, _Port(), _Cost(), folder, steps_for=lambda n: 1)
    eng.run()
    folder.write_text("scenario.yaml", yaml.safe_dump({
        "name": "engine", "seed": 1, "rounds": 3, "data": {"dataset": "synthetic"},
        "model": {"name": "cnn"}, "algorithm": {"name": "fedmpq", "lr": 0.1},
        "fleet": [{"profile": "raspberry_pi_4", "count": 2, "name": "pis", "budget_bits": 4},
                  {"profile": "stm32", "count": 2, "name": "mcus", "budget_bits": 4}],
        "selection": {"deadline_s": 3.0}}))
    folder.write_json("summary.json", {"run_id": "engine-run", "algorithm": "fedmpq",
                                       "scenario": "engine", "seed": 1, "rounds": 3,
                                       "clients": 4})
    path = folder.commit()

    run = load_run(path)
    h = metrics.headline(run)
    assert h.rounds_done == 3 and h.final_accuracy == pytest.approx(0.7)
    assert h.stragglers > 0 and h.infeasible == 3
    blocks, _, _ = build_report(run)
    assert [b.id for b in blocks if isinstance(b, pg.Figure)] == FIGURES
    tl = metrics.timeline(run)
    assert any(s.failed for s in tl.segments)
    assert {m.kind for m in tl.marks} == {"straggler", "infeasible"}
    write_energy_csv(run, tmp_path / "energy.csv")
    rows = read_rows(tmp_path / "energy.csv")
    assert float(rows[-1]["energy_j"]) == pytest.approx(float(run.rounds["energy_j"][-1]))
