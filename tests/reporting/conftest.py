"""Shared, session-scoped report folders: rendering figures is the slow part, so each page
is made once (through the click commands) and every test reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli.report import compare, report
from tests.reporting.runfolder import MCU, PHONE, SBC, make_run


@dataclass
class Made:
    run: Path
    out: Path
    html: Path
    text: str


@pytest.fixture(scope="session")
def het_report(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A heterogeneous FedMPQ-like run: 3 rounds, 6 clients on 2 device classes, one
    straggler (round 1), one infeasible client (round 2), mixed per-layer bits."""
    root = tmp_path_factory.mktemp("runs")
    run = make_run(root, "tiny-fedmpq-s0", infeasible=((2, 1),))
    out = root / "out"
    res = CliRunner().invoke(report, [str(run), "--output", str(out)])
    assert res.exit_code == 0, res.output
    html = out / "report.html"
    return Made(run, out, html, html.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def compare_report(tmp_path_factory: pytest.TempPathFactory) -> Made:
    root = tmp_path_factory.mktemp("cmp")
    a = make_run(root, "fedmpq-s0", groups=(PHONE, SBC, MCU), rounds=4)
    b = make_run(root, "fpq8-s0", algorithm="fpq8", groups=(PHONE, SBC, MCU), rounds=4,
                 acc_max=0.93, infeasible=((0, 6), (1, 6), (2, 6), (3, 6)))
    out = root / "cmp-out"
    res = CliRunner().invoke(compare, [str(a), str(b), "--output", str(out)])
    assert res.exit_code == 0, res.output
    html = out / "compare.html"
    return Made(root, out, html, html.read_text(encoding="utf-8"))
