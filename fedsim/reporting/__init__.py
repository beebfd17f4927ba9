"""Reports of finished runs: one run (``fedsim report``) or several (``fedsim compare``).

Reads run folders only (never torch, never the training code), so a report can be made from
a copied results folder on any machine. Figures are matplotlib (Agg renderer, no pyplot).

    load_run(path) -> Run                       validate and read a run folder
    write_report(run_dir, output=None) -> Path  report.html (+ report.md, figures/, energy.csv)
    write_compare(run_dirs, output) -> Path     compare.html (+ compare.md, figures/, compare.csv)

Layout: ``run`` reads a run folder; ``metrics`` computes the numbers and ``figures`` draws
them; ``report`` (one run) and ``compare`` (several) assemble pages from sections, which
``page`` renders; ``describe``, ``definitions``, ``output`` and ``style`` are shared by both.

Bad input raises :class:`fedsim.errors.InputError` naming the file (and column or line).
Imports are lazy (numpy, matplotlib load on first use) so the CLI stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedsim.reporting.run import Run

__all__ = ["RUN_FILES", "load_run", "write_compare", "write_report"]


def load_run(path: str | Path) -> Run:
    """Validate and read a run folder; InputError names the missing file(s) or bad value."""
    from fedsim.reporting.run import load_run as _load

    return _load(path)


def write_report(run_dir: str | Path, output: Path | None = None) -> Path:
    """Report of one run; returns the path of report.html (default: ``<run_dir>/report/``)."""
    from fedsim.reporting.report import write_report as _write

    return _write(run_dir, output)


def write_compare(run_dirs: Sequence[str | Path], output: str | Path) -> Path:
    """Side-by-side report of several runs; returns the path of compare.html.

    An argument that is a parent folder of several run folders (one per seed) counts as one
    entry, drawn as a mean curve with a ± one standard deviation band.
    """
    from fedsim.reporting.compare import write_compare as _write

    return _write(run_dirs, output)


def __getattr__(name: str) -> Any:
    if name == "RUN_FILES":
        from fedsim.reporting import run

        return getattr(run, name)
    raise AttributeError(f"module 'fedsim.reporting' has no attribute {name!r}")
