"""Click commands ``report`` and ``compare``; the CLI adds them with ``main.add_command``.

Kept free of heavy imports (matplotlib loads only when a command runs), so ``fedsim --help``
stays fast. Bad input exits 2 with one message, never a traceback, like the other commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from fedsim.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def _input_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html, report.md, figures/ and energy.csv "
                   "[default: RUN_DIR/report].")
@_input_errors
def report(run_dir: Path, output: Path | None) -> None:
    """Write an HTML + Markdown report of the run folder RUN_DIR."""
    from fedsim.reporting import write_report

    path = write_report(run_dir, output)
    click.echo(f"report: {path}")
    click.echo(f"markdown: {path.with_suffix('.md')}  energy table: {path.parent / 'energy.csv'}")


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("compare"), show_default=True,
              help="Folder for compare.html, compare.md, figures/ and compare.csv.")
@_input_errors
def compare(run_dirs: tuple[Path, ...], output: Path) -> None:
    """Compare run folders side by side (a folder of per-seed runs counts as one entry)."""
    from fedsim.reporting import write_compare

    path = write_compare(list(run_dirs), output)
    click.echo(f"comparison: {path}")
