"""Golden runs: the deterministic files of short real runs, byte for byte (see cases.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.golden.cases import CASES, FILES, GOLDEN, Case, run_case


def _first_difference(want: str, got: str) -> str:
    diff = difflib.unified_diff(want.splitlines(), got.splitlines(), "golden", "this run",
                                lineterm="", n=1)
    return "\n".join(list(diff)[:12])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_run_matches_golden_files(case: Case, tmp_path: Path) -> None:
    run = run_case(case, tmp_path)
    for f in FILES:
        want = (GOLDEN / case.name / f).read_text(encoding="utf-8")
        got = (run / f).read_text(encoding="utf-8")
        assert got == want, (
            f"{case.name}/{f} differs from the golden file. If the change is meant to alter "
            f"results, run `python -m tests.golden.regenerate {case.name}` and say why in the "
            f"commit.\n{_first_difference(want, got)}")
