"""``fedsim export RUN_DIR``: a columnar (Parquet) run folder as text files.

Why: population-scale runs record events and client rows as Parquet parts; tools that read
JSON lines and CSV (or a diff against a text run) get the very bytes a text run writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from fedsim.cli.errors import handle_errors
from fedsim.errors import InputError


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
@click.option("--events", "events", type=click.Choice(["jsonl"]), default="jsonl",
              show_default=True, help="Layout to export to (text: events.jsonl, clients.csv, "
              "bits.csv).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="New run folder (default: RUN_DIR-jsonl beside RUN_DIR).")
@handle_errors
def export(run_dir: Path, events: str, output: Path | None) -> None:
    """Write a copy of the Parquet run RUN_DIR with text records (byte for byte what
    `fedsim run --events jsonl` writes); the copy is a complete run folder."""
    from fedsim.records.columnar import TABLES, export_text, is_columnar
    from fedsim.records.reader import check_run_folder

    check_run_folder(run_dir)
    if not is_columnar(run_dir):
        raise InputError("already a text run folder (events.jsonl): nothing to export",
                         file=run_dir)
    out = output or run_dir.with_name(f"{run_dir.name}-{events}")
    if out.exists():
        raise InputError("the output folder exists; choose another with --output", file=out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(run_dir, tmp, ignore=shutil.ignore_patterns(*TABLES))
        export_text(run_dir, tmp)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    click.echo(f"exported: {out}")
