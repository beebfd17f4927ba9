"""Accuracy curves of single runs, and the mean ± sd band of a seed group."""

from __future__ import annotations

import numpy as np

from fedsim.reporting.run import Run


def accuracy_curve(run: Run, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, accuracy) with x one of sim_time_s, energy_j, round; NaN accuracies dropped."""
    r = run.rounds
    if not len(r):
        return np.array([]), np.array([])
    xs = r[x].astype(float)
    ys = r["accuracy"].astype(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok]


def band(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 200
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean and standard deviation of several curves on a common x grid (seed groups).

    The grid spans the x range that every curve covers, so the band never extrapolates.
    """
    curves = [(x, y) for x, y in curves if len(x) >= 2]
    if len(curves) < 2:
        return None
    lo = max(float(x.min()) for x, _ in curves)
    hi = min(float(x.max()) for x, _ in curves)
    if not hi > lo:
        return None
    grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(axis=0), ys.std(axis=0)
