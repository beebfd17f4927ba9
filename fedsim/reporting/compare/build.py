"""Assemble the comparison page (``fedsim compare``) from its sections, and write it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedsim.reporting import page as pg
from fedsim.reporting.compare.compare_csv import write_compare_csv
from fedsim.reporting.compare.groups import Group, label_groups, load_groups
from fedsim.reporting.compare.sections import (
    accuracy_section,
    bits_section,
    energy_and_fairness_sections,
)
from fedsim.reporting.compare.tables import compare_table, runs_table
from fedsim.reporting.definitions import DEFINITIONS
from fedsim.reporting.describe import dataset_name
from fedsim.reporting.output import prepare_output, write_outputs


def _title(groups: list[Group]) -> str:
    """The entries' labels, or just their number when the labels would not fit a line."""
    title = f"fedsim comparison: {' vs '.join(g.label for g in groups)}"
    if len(title) > 110:
        title = f"fedsim comparison of {len(groups)} runs"
    return title


def _subtitle(groups: list[Group]) -> str:
    datasets = sorted({dataset_name(r.scenario) for g in groups for r in g.runs})
    return (f"{len(groups)} entries, {sum(len(g.runs) for g in groups)} run folders · "
            f"data: {', '.join(datasets)}")


def _headline_blocks(groups: list[Group]) -> list[pg.Block]:
    table, target = compare_table(groups)
    blocks: list[pg.Block] = [pg.Heading("Headline numbers", "headline"), table]
    if target is not None:
        blocks.append(pg.Para(
            f"Time, energy and rounds to reach {100 * target:.1f} % (the best accuracy of the "
            "weakest entry, so every entry reaches it) count from the start of the run to the "
            "end of the first round at or above it."))
    return blocks


def build_compare(groups: list[Group]) -> tuple[list[pg.Block], str, str]:
    """The page's blocks, title and subtitle; labels the groups first (see label_groups)."""
    label_groups(groups)
    series = [g.series for g in groups if g.series is not None]
    blocks: list[pg.Block] = []
    empty = [g.label for g in groups if all(r.n_rounds == 0 for r in g.runs)]
    if empty:
        blocks.append(pg.Note(f"Zero completed rounds in: {', '.join(empty)}. These runs have "
                              "no curve below.", kind="warn"))
    blocks += [pg.Heading("Runs", "scenario"), runs_table(groups)]
    blocks += _headline_blocks(groups)
    blocks += accuracy_section(groups, series)
    blocks += energy_and_fairness_sections(groups, series)
    blocks += bits_section(groups)
    blocks += [pg.Heading("Definitions", "definitions"), pg.Definitions(DEFINITIONS)]
    return blocks, _title(groups), _subtitle(groups)


def write_compare(run_dirs: Sequence[str | Path], output: str | Path) -> Path:
    """Compare several runs (a seeds parent counts as one entry); return compare.html's path.

    Writes compare.html, compare.md, compare.csv and figures/*.png into ``output``.
    """
    groups = load_groups(run_dirs)
    out = prepare_output(Path(output))
    return write_outputs(out, "compare", build_compare(groups), [g.path for g in groups],
                         lambda: write_compare_csv(groups, out / "compare.csv"),
                         "the comparison")
