"""Rewrite the golden files from fresh runs: ``python -m tests.golden.regenerate [CASE ...]``.

Run it only when a change is *meant* to alter simulated results, and say why in the commit.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.golden.cases import CASES, FILES, GOLDEN, run_case


def main(names: list[str]) -> int:
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown case(s) {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2
    for case in [known[n] for n in names] if names else CASES:
        with tempfile.TemporaryDirectory() as tmp:
            run = run_case(case, Path(tmp))
            dest = GOLDEN / case.name
            dest.mkdir(exist_ok=True)
            for f in FILES:
                shutil.copyfile(run / f, dest / f)
        print(f"{case.name}: {', '.join(FILES)} rewritten in {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
