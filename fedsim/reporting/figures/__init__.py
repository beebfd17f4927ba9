"""The figures of a report, as matplotlib :class:`~matplotlib.figure.Figure` objects.

No pyplot: figures are built directly (the Agg renderer draws them when saved), so making a
report never touches the caller's backend or global state. Every function takes the parsed
run(s) and returns one figure; the page module saves it as PNG and inline SVG.

One module per figure family; this package re-exports the figures and :class:`Series`.
"""

from __future__ import annotations

from fedsim.reporting.figures.accuracy import X_LABELS, accuracy_curves
from fedsim.reporting.figures.bits import bit_heatmap, bit_trajectories
from fedsim.reporting.figures.canvas import Series, new_figure, styled
from fedsim.reporting.figures.compare import (
    compare_bits,
    compare_energy,
    compare_participation,
)
from fedsim.reporting.figures.energy import energy_by_class
from fedsim.reporting.figures.fairness import fairness
from fedsim.reporting.figures.timeline import MARK_STYLE, client_timeline

__all__ = [
    "MARK_STYLE",
    "X_LABELS",
    "Series",
    "accuracy_curves",
    "bit_heatmap",
    "bit_trajectories",
    "client_timeline",
    "compare_bits",
    "compare_energy",
    "compare_participation",
    "energy_by_class",
    "fairness",
    "new_figure",
    "styled",
]
