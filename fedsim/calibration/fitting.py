"""Fitting a host profile to its measured step times (``fedsim profiles calibrate``).

The efficiencies are fitted with the law and the fit of ``fedsim profiles check --fit``
(:func:`~fedsim.calibration.check.fit_observations`) and every step time is priced by
:func:`~fedsim.calibration.check.step_time`, so a host profile is fitted and checked exactly
like a shipped one. What is particular to a host is here: the held-out test across its own
models, the inversion of the cost model into a ``latency_table``, and the cross-check of the
other models. Profiles travel as the plain dicts :mod:`~fedsim.calibration.profile_file`
writes, so what is fitted is what is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fedsim.calibration.check import (
    Observation,
    fit_observations,
    significant,
    step_seconds,
    step_time,
    with_efficiency,
)
from fedsim.calibration.timing import A_GRID, W_GRID, HostMeasurements, Timing, Workload
from fedsim.hardware.schema import OP_CLASSES, DeviceProfile, Efficiency

#: ``(spec, timing)`` of one model's float step: what the efficiencies are fitted to.
FloatTiming = tuple[Any, Timing]


@dataclass(frozen=True)
class ModelCheck:
    """How the fitted profile predicts a non-reference model: measured vs predicted step time."""

    workload: Workload
    w_bits: int
    a_bits: int
    measured_s: float
    predicted_s: float
    own_gflops: float  # the model's own effective float rate (G ops/s, MAC = 2 ops)

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0


@dataclass(frozen=True)
class HostFit:
    """What :func:`fit_host` fitted: the profile's figures and the held-out test."""

    efficiency: dict[str, float]
    table: list[list[float]]
    #: (workload, measured, predicted) float step seconds, each from a fit on the other models
    held_out: list[tuple[Workload, float, float]]


def ones_table() -> list[list[float]]:
    """The latency table of a profile that runs every setting at the float rate."""
    return [[1.0] * len(A_GRID) for _ in W_GRID]


def _solve_log(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """``x`` in [lo, hi] with ``f(x) = target`` for a monotone ``f`` (bisection in log x).

    Clamps to the bound nearest the target when the target is out of ``f``'s range (e.g. a
    memory-bound step time that no compute rate can reach).
    """
    f_lo, f_hi = f(lo), f(hi)
    increasing = f_hi >= f_lo
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-9:
            break
    return math.sqrt(lo * hi)


def float_timings(meas: HostMeasurements) -> list[FloatTiming]:
    """The float step of every timed model, the reference model's first."""
    return [
        (spec, next(t for t in ts if (t.w_bits, t.a_bits) == (32, 32)))
        for ts, spec in [meas.reference, *meas.others]
    ]


def fit_efficiencies(
    base: dict[str, Any], float_timings: Sequence[FloatTiming]
) -> tuple[dict[str, float], float]:
    """Per-class efficiencies that reproduce the float step times of every timed model
    (``(spec, timing)`` pairs) under ``base``'s measured peak and bandwidth; and the rms
    log error of that fit. The law and the fit are those of ``fedsim profiles check --fit``."""
    prof = DeviceProfile.model_validate(base)
    obs = [Observation(spec, t.workload.batch_size, 32, t.step_s, t.workload.model)
           for spec, t in float_timings]
    fitted, _, rms = fit_observations(prof, obs, fit_overhead=False)
    return {c: significant(fitted.compute.efficiency.of(c)) for c in OP_CLASSES}, rms


def leave_one_out(
    base: dict[str, Any], float_timings: Sequence[FloatTiming]
) -> list[tuple[Workload, float, float]]:
    """For each model: its float step time predicted by efficiencies fitted on the *other*
    models only (a held-out test of the law on this host). ``(workload, measured, predicted)``.
    """
    out = []
    for i, (spec, t) in enumerate(float_timings):
        rest = [ft for j, ft in enumerate(float_timings) if j != i]
        if not rest:
            continue
        eff, _ = fit_efficiencies(base, rest)
        prof = with_efficiency(DeviceProfile.model_validate(base), Efficiency(**eff))
        pred = step_seconds(prof, Observation(spec, t.workload.batch_size, 32, t.step_s))
        out.append((t.workload, t.step_s, pred))
    return out


def fit_table(base: dict[str, Any], spec: Any, timings: Sequence[Timing]) -> list[list[float]]:
    """Invert the cost model: the relative-latency grid that reproduces ``timings`` (one per
    grid setting, of the reference model) under ``base``'s fitted efficiencies."""
    by = {(t.w_bits, t.a_bits): t for t in timings}
    batch = timings[0].workload.batch_size

    def with_(table: list[list[float]]) -> DeviceProfile:
        d = dict(base)
        d["compute"] = {**base["compute"],
                        "latency_table": {**base["compute"]["latency_table"],
                                          "relative_latency": table}}
        return DeviceProfile.model_validate(d)

    table = ones_table()
    for i, w in enumerate(W_GRID):
        for j, a in enumerate(A_GRID):
            if (w, a) == (32, 32):
                continue

            def cost(r: float, i: int = i, j: int = j, w: int = w, a: int = a) -> float:
                t = ones_table()
                t[i][j] = r
                return step_time(with_(t), spec, w, a, batch)

            table[i][j] = significant(_solve_log(cost, by[(w, a)].step_s, 1e-3, 1e3))
    return table


def fit_host(base: dict[str, Any], meas: HostMeasurements) -> HostFit:
    """Fit ``base`` (the profile's measured figures, efficiencies at their defaults) to
    ``meas``.

    Why in this order: the efficiencies come from the float steps of *every* model, since
    the per-class law must hold across models; the table is fitted after them, on the
    reference model only, because it is each fake-quant setting's time *relative to float*
    under those efficiencies. The held-out test reuses ``base`` so each fit starts alike.
    """
    floats = float_timings(meas)
    efficiency, _rms = fit_efficiencies(base, floats)
    held_out = leave_one_out(base, floats)
    fitted = {**base, "compute": {**base["compute"], "efficiency": efficiency}}
    ref_timings, ref_spec = meas.reference
    return HostFit(efficiency, fit_table(fitted, ref_spec, ref_timings), held_out)


def cross_check(profile: DeviceProfile, meas: HostMeasurements) -> list[ModelCheck]:
    """The fitted profile's step time of every non-reference timing, against the measured one.

    Why: the table is fitted on the reference model alone, so only the other models say how
    far the profile carries to a model it was not fitted on (in fake-quant too).
    """
    checks: list[ModelCheck] = []
    for timings, spec in meas.others:
        by = {(t.w_bits, t.a_bits): t for t in timings}
        own = 2.0 * 3.0 * spec.macs_per_sample * timings[0].workload.batch_size
        for t in timings:
            pred = step_time(profile, spec, t.w_bits, t.a_bits, t.workload.batch_size)
            checks.append(ModelCheck(t.workload, t.w_bits, t.a_bits, t.step_s, pred,
                                     own / by[(32, 32)].step_s / 1e9))
    return checks
