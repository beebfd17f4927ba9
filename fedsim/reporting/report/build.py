"""Assemble the single-run page (``fedsim report``) from its sections, and write it."""

from __future__ import annotations

from pathlib import Path

from fedsim.reporting import metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.definitions import DEFINITIONS
from fedsim.reporting.describe import dataset_name, model_name
from fedsim.reporting.output import prepare_output, write_outputs
from fedsim.reporting.report.budgets import budgets_section
from fedsim.reporting.report.energy_csv import write_energy_csv
from fedsim.reporting.report.sections import (
    accuracy_section,
    bits_section,
    energy_section,
    fairness_section,
    timeline_section,
)
from fedsim.reporting.report.tables import cards, fleet_table, scenario_rows
from fedsim.reporting.run import Run, load_run


def _subtitle(run: Run, h: metrics.Headline) -> str:
    return (f"{style.method_name(run.algorithm)} on {dataset_name(run.scenario)} / "
            f"{model_name(run)} · scenario {run.scenario_name} · seed {run.seed}"
            f" · {h.n_clients} clients in {len(run.device_classes)} device classes")


def build_report(run: Run) -> tuple[list[pg.Block], str, str]:
    """The page's blocks, title and subtitle.

    A run with zero completed rounds still gets every section (each says what is missing)
    under a warning, so a failed run's report explains itself rather than failing too.
    """
    h = metrics.headline(run)
    stats = metrics.class_stats(run)
    no_rounds = h.rounds_done == 0
    blocks: list[pg.Block] = []
    if no_rounds:
        blocks.append(pg.Note(
            "This run completed zero rounds: there is no accuracy, time or energy curve to "
            "show. The sections below say what the run recorded.", kind="warn"))
    blocks += [pg.Heading("Scenario", "scenario"),
               pg.Table(["", ""], scenario_rows(run), align="ll", show_header=False),
               fleet_table(run)]
    blocks += budgets_section(run)
    blocks += [pg.Heading("Headline numbers", "headline"), cards(h)]
    blocks += accuracy_section(run, no_rounds)
    blocks += energy_section(run, h, stats)
    blocks += timeline_section(run, no_rounds)
    blocks += bits_section(run, no_rounds)
    blocks += fairness_section(run, h, stats)
    blocks += [pg.Heading("Definitions", "definitions"), pg.Definitions(DEFINITIONS)]
    return blocks, f"fedsim report: {run.run_id}", _subtitle(run, h)


def write_report(run_dir: str | Path, output: Path | None = None) -> Path:
    """Write report.html, report.md, figures/*.png and energy.csv; return report.html's path.

    ``output`` defaults to ``<run_dir>/report/``.
    """
    run = load_run(run_dir)
    out = prepare_output(Path(output) if output is not None else run.path / "report")
    return write_outputs(out, "report", build_report(run), [run.path],
                         lambda: write_energy_csv(run, out / "energy.csv"), "the report")
