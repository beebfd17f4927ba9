"""Open the pages in headless Chromium: they render offline, with every figure, no errors.

CI installs Debian's chromium; elsewhere the test skips. Set FEDSIM_SCREENSHOT_DIR to keep
the full-page screenshots (CI can upload them as artifacts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.reporting.cdp import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} not installed (apt-get install chromium)")


def _open(html: Path, shot: Path) -> dict[str, Any]:
    from tests.reporting.cdp import screenshot_page

    info = screenshot_page(html, shot)
    keep = os.environ.get("FEDSIM_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return info


def _assert_not_blank(png: Path) -> None:
    from matplotlib.image import imread

    img = imread(png)[..., :3]
    h, w, _ = img.shape
    assert w >= 1000 and h >= 2000, (w, h)  # a full page, not an empty viewport
    ink = (img.min(axis=2) < 0.9).mean()  # share of pixels that are not (near) white
    assert ink > 0.03, ink
    assert float(np.std(img)) > 0.05
    colourful = (img.max(axis=2) - img.min(axis=2) > 0.25).mean()  # figures have colour
    assert colourful > 0.005, colourful


def _assert_offline(info: dict[str, Any]) -> None:
    assert info["console_errors"] == []
    fetched = [u for u in info["urls"] if not u.startswith(("file:", "data:"))]
    assert fetched == [], fetched


def test_report_renders_in_chromium(het_report: Any, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    info = _open(het_report.html, shot)
    assert info["title"] == "fedsim report: tiny-fedmpq-s0"
    assert info["figures"] == 7 and info["drawn"] == 7
    assert info["sections"] == ["scenario", "headline", "accuracy", "energy", "timeline",
                                "bits", "fairness", "definitions"]
    _assert_offline(info)
    _assert_not_blank(shot)


def test_compare_renders_in_chromium(compare_report: Any, tmp_path: Path) -> None:
    shot = tmp_path / "compare.png"
    info = _open(compare_report.html, shot)
    assert info["title"] == "fedsim comparison: FedMPQ vs FPQ8"
    assert info["figures"] == 6 and info["drawn"] == 6
    _assert_offline(info)
    _assert_not_blank(shot)


def test_sweep_page_renders_with_its_pareto_front(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fedsim.cli import main

    quick = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
    res = CliRunner().invoke(main, ["sweep", str(quick), "--grid", "algorithm.name=fedavg,aqfl",
                                    "--grid", "fleet.1.budget_bits=2,4", "--set", "rounds=2",
                                    "--workers", "2", "-o", str(tmp_path), "--name", "sw"])
    assert res.exit_code == 0, res.output
    shot = tmp_path / "sweep.png"
    info = _open(tmp_path / "sw" / "sweep.html", shot)
    assert info["title"] == "fedsim sweep: quickstart"
    assert info["sections"] == ["pareto", "cells", "curves"]
    assert info["figures"] == 3 and info["drawn"] == 3
    _assert_offline(info)
    from matplotlib.image import imread

    img = imread(shot)[..., :3]
    assert img.shape[1] >= 1000 and img.shape[0] >= 1500, img.shape  # the whole page
    assert (img.min(axis=2) < 0.9).mean() > 0.03  # text and figures, not a blank page
    assert "Pareto front" in (tmp_path / "sw" / "sweep.md").read_text()
