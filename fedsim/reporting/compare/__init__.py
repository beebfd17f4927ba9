"""The comparison of several runs (``fedsim compare``): compare.html, compare.md, figures/,
compare.csv. A seeds parent folder counts as one entry, drawn as mean and band.

The single-run report is :mod:`fedsim.reporting.report`; both render through
:mod:`fedsim.reporting.page`.
"""

from __future__ import annotations

from fedsim.reporting.compare.build import build_compare, write_compare
from fedsim.reporting.compare.compare_csv import COMPARE_COLUMNS, write_compare_csv
from fedsim.reporting.compare.groups import Group, label_groups, load_groups

__all__ = ["COMPARE_COLUMNS", "Group", "build_compare", "label_groups", "load_groups",
           "write_compare", "write_compare_csv"]
