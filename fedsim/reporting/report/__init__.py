"""The single-run report (``fedsim report``): report.html, report.md, figures/, energy.csv.

A page is a list of blocks (headings, tables, figures) built from the metrics and figures
packages, then rendered to report.html (self-contained) and report.md by
:mod:`fedsim.reporting.page`. The comparison of several runs is :mod:`fedsim.reporting.compare`.
"""

from __future__ import annotations

from fedsim.reporting.report.build import build_report, write_report
from fedsim.reporting.report.energy_csv import ENERGY_COLUMNS, write_energy_csv

__all__ = ["ENERGY_COLUMNS", "build_report", "write_energy_csv", "write_report"]
