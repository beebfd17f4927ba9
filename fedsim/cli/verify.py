"""`fedsim verify RUN_DIR`: recheck a run folder's invariants from its files.

Exit 0 with one ``ok:`` line when every invariant holds, 1 with a numbered list of
violations otherwise, 2 when RUN_DIR is not a (complete, readable) run folder. Torch-free.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fedsim.cli.errors import handle_errors


@click.command("verify")
@click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
@click.option("--max-shown", type=click.IntRange(1), default=200, show_default=True,
              help="Violations listed before '... and N more'.")
@handle_errors
def verify(run_dir: Path, max_shown: int) -> None:
    """Recompute RUN_DIR's energies, payloads, bits, budgets and counts from its files.

    Checks events.jsonl, rounds.csv, clients.csv, bits.csv and summary.json against each
    other; exits 1 listing every violation (round, client and the numbers that disagree).
    """
    from fedsim.verify import verify_run

    report = verify_run(run_dir)
    click.echo(report.render(limit=max_shown))
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover - `python -m fedsim.cli.verify RUN_DIR`
    verify()
