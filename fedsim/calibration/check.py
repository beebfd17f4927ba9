"""Predict published training times with the cost model, and fit a profile's efficiencies.

``fedsim profiles check`` runs :func:`predict_rows` over the measurement table and
:func:`rankings` per device; ``--fit DEVICE`` runs :func:`fit_efficiency` on that device's
``fit`` rows and reports the ``holdout`` rows with the fitted profile. Every prediction goes
through :func:`fedsim.hardware.train_cost`, the function a simulation charges, so the check
tests the simulator itself, not a copy of its formula.

The fit: per operator class, the efficiency ``eta_c`` (and, when the rows span several batch
sizes of one model, the per-call overhead) minimising the squared log error over the fit rows,
plus a weak pull (weight :data:`PRIOR_WEIGHT`) of each ``log eta_c`` towards the default
(:data:`~fedsim.hardware.schema.DEFAULT_EFFICIENCY`), so a class the rows say nothing about
(e.g. ``linear`` when every row is a convolutional network) stays at the default instead of
drifting. The fit starts from and is pulled towards the defaults, never the profile's current
values, so it gives the same numbers however often it is rerun. Levenberg-Marquardt on a
finite-difference Jacobian; five parameters at most, so it takes milliseconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fedsim.calibration.measurements import Measurement
from fedsim.hardware.compute import (
    BREAKDOWN,
    LayerTable,
    act_bits_matrix,
    bits_matrix,
    step_time_breakdown,
    train_cost,
)
from fedsim.hardware.schema import DEFAULT_EFFICIENCY, OP_CLASSES, DeviceProfile, Efficiency
from fedsim.spec import FLOAT_BITS, ModelSpec

PRIOR_WEIGHT = 0.05  #: weight of the pull towards the current efficiencies (log space)
MIN_EFFICIENCY = 1e-4
TOLERANCE = 0.30  #: the +-30 % a held-out prediction must meet (docs/hardware.md)
#: Models whose measured times differ by less than this are a tie: their order is within the
#: noise of a 20-batch timing, so the cost model may order them either way.
RANK_TIE = 0.05


@dataclass(frozen=True)
class Prediction:
    """The cost model's time for one measured row."""

    row: Measurement
    predicted_s: float
    breakdown: dict[str, float]  # seconds per step per BREAKDOWN column

    @property
    def error(self) -> float:
        return self.predicted_s / self.row.seconds - 1.0

    @property
    def within(self) -> bool:
        return abs(self.error) <= TOLERANCE

    @property
    def dominant(self) -> str:
        """The column that takes most of the predicted step."""
        return max(self.breakdown, key=lambda k: self.breakdown[k])


@dataclass(frozen=True)
class RankCheck:
    """Models on one device at one input and batch: measured order vs predicted order."""

    device: str
    setting: str  # "3x224x224, batch 16"
    measured: tuple[str, ...]  # workloads, fastest first
    predicted: tuple[str, ...]
    discordant: tuple[tuple[str, str], ...]  # pairs the model orders the other way

    @property
    def preserved(self) -> bool:
        return not self.discordant


@dataclass
class FitResult:
    """A profile's efficiencies fitted on some rows."""

    profile: DeviceProfile
    rows: list[Measurement]
    before: Efficiency
    overhead_fitted: bool
    rms_log_error: float
    notes: list[str] = field(default_factory=list)


class SpecCache:
    """Layer tables of the rows' workloads, each measured once (torch work)."""

    def __init__(self) -> None:
        self._specs: dict[str, ModelSpec] = {}

    def get(self, m: Measurement) -> ModelSpec:
        key = m.workload
        if key not in self._specs:
            self._specs[key] = workload_spec(m)
        return self._specs[key]


def workload_spec(m: Measurement) -> ModelSpec:
    """Build the row's model and measure its layer table (``num_classes`` default: 1000 for
    torchvision models, as their builders, 10 for the zoo's)."""
    import torch

    from fedsim.models import build_model, model_spec
    from fedsim.models.tvzoo import is_torchvision_name

    opts = dict(m.options)
    classes = opts.pop("num_classes", 1000 if is_torchvision_name(m.model) else 10)
    c, h, _w = m.input_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(m.model, in_channels=c, num_classes=int(classes), image_size=h,
                            options=opts)
    return model_spec(model, name=m.model, input_shape=m.input_shape)


def predict(profile: DeviceProfile, spec: ModelSpec, m: Measurement) -> Prediction:
    """Seconds of one training step of ``m``'s workload on ``profile``, and where they go."""
    bits = [m.bits] * spec.n_quantized
    act = None if m.bits >= FLOAT_BITS else m.bits
    w, a = bits_matrix(spec, [bits]), act_bits_matrix(spec, act, 1)
    parts = step_time_breakdown(profile.compute, LayerTable.of(spec), w, a, m.batch)[0]
    return Prediction(row=m, predicted_s=step_time(profile, spec, m.bits, m.bits, m.batch),
                      breakdown=dict(zip(BREAKDOWN, map(float, parts), strict=True)))


def predict_rows(
    profiles: dict[str, DeviceProfile], rows: Sequence[Measurement], cache: SpecCache
) -> list[Prediction]:
    return [predict(profiles[m.device], cache.get(m), m) for m in rows]


def rankings(preds: Sequence[Prediction]) -> list[RankCheck]:
    """Per device and (input, batch, precision): is the order of models by time preserved?

    A pair counts as discordant when the model orders it against the measurement and the
    measured times differ by more than :data:`RANK_TIE`.
    """
    groups: dict[tuple[str, str], list[Prediction]] = {}
    for p in preds:
        m = p.row
        setting = (f"{'x'.join(map(str, m.input_shape))}, batch {m.batch}, {m.precision}")
        groups.setdefault((m.device, setting), []).append(p)
    out = []
    for (device, setting), ps in sorted(groups.items()):
        by_model: dict[str, Prediction] = {}
        for p in ps:  # one row per workload (the first, if a table repeats one)
            by_model.setdefault(p.row.model + _opt_tag(p.row), p)
        if len(by_model) < 2:
            continue
        meas = tuple(sorted(by_model, key=lambda k: by_model[k].row.seconds))
        pred = tuple(sorted(by_model, key=lambda k: by_model[k].predicted_s))
        disc = tuple(
            (a, b) for a, b in itertools.combinations(meas, 2)
            if by_model[a].predicted_s > by_model[b].predicted_s
            and by_model[b].row.seconds > (1.0 + RANK_TIE) * by_model[a].row.seconds
        )
        out.append(RankCheck(device, setting, meas, pred, disc))
    return out


def _opt_tag(m: Measurement) -> str:
    shown = {k: v for k, v in m.options.items() if k != "num_classes"}
    return "[" + ",".join(f"{k}={v}" for k, v in sorted(shown.items())) + "]" if shown else ""


def with_efficiency(
    profile: DeviceProfile, eff: Efficiency, overhead_us: float | None = None
) -> DeviceProfile:
    update: dict[str, object] = {"efficiency": eff}
    if overhead_us is not None:
        update["op_overhead_us"] = overhead_us
    return profile.model_copy(update={"compute": profile.compute.model_copy(update=update)})


@dataclass(frozen=True)
class Observation:
    """One measured step time of a workload: what :func:`fit_efficiency` fits to."""

    spec: ModelSpec
    batch: int
    bits: int  # weights and activations (32 = fp32)
    seconds: float
    label: str = ""


def observation(m: Measurement, cache: SpecCache) -> Observation:
    return Observation(cache.get(m), m.batch, m.bits, m.seconds, m.id)


def step_time(
    profile: DeviceProfile, spec: ModelSpec, w_bits: int, a_bits: int, batch: int
) -> float:
    """The cost model's seconds for one training step of ``spec`` on ``profile``: every
    quantized layer at ``w_bits``, activations at ``a_bits`` (32 = float).

    The one place calibration asks the cost model for a step time, and it asks
    :func:`~fedsim.hardware.train_cost`, the function a simulation charges, so a fit or a
    check tests the simulator itself.
    """
    act = None if a_bits >= FLOAT_BITS else a_bits
    return train_cost(profile, spec, [w_bits] * spec.n_quantized, act_bits=act,
                      batch_size=batch, steps=1).time_s


def step_seconds(profile: DeviceProfile, obs: Observation) -> float:
    """The cost model's seconds for one step of ``obs``'s workload on ``profile``."""
    return step_time(profile, obs.spec, obs.bits, obs.bits, obs.batch)


def significant(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant figures: how fitted and measured figures are
    written to a profile (more digits would claim a precision no timing has)."""
    return float(f"{x:.{digits}g}")


def fit_efficiency(
    profile: DeviceProfile, rows: Sequence[Measurement], cache: SpecCache
) -> FitResult:
    """Fit ``profile``'s per-class efficiencies (and per-call overhead) on table rows."""
    obs = [observation(m, cache) for m in rows]
    fitted, overhead, rms = fit_observations(profile, obs)
    return FitResult(profile=fitted, rows=list(rows), before=profile.compute.efficiency,
                     overhead_fitted=overhead, rms_log_error=rms)


def fit_observations(
    profile: DeviceProfile, obs: Sequence[Observation], *, fit_overhead: bool | None = None
) -> tuple[DeviceProfile, bool, float]:
    """(fitted profile, whether the overhead was fitted, rms log error) for ``obs``.

    The overhead is fitted when ``fit_overhead`` says so, or (None) when the observations
    time one workload at several batch sizes (only then do they separate a per-call cost
    from a per-sample one).

    Raises:
        ValueError: no observations.
    """
    if not obs:
        raise ValueError(f"no observations to fit {profile.name} on")
    theta0 = [math.log(DEFAULT_EFFICIENCY[c]) for c in OP_CLASSES]
    if fit_overhead is None:
        batches = {(id(o.spec), o.batch) for o in obs}
        fit_overhead = len(batches) > len({k for k, _ in batches})
    if fit_overhead:
        theta0.append(0.0)  # log(0 us + 1)
    prior = np.array(theta0)

    def unpack(theta: np.ndarray) -> DeviceProfile:
        eff = Efficiency(**{c: float(min(1.0, max(MIN_EFFICIENCY, math.exp(t))))
                            for c, t in zip(OP_CLASSES, theta[:4], strict=True)})
        overhead = max(0.0, math.exp(theta[4]) - 1.0) if fit_overhead else None
        return with_efficiency(profile, eff, overhead)

    def residuals(theta: np.ndarray) -> np.ndarray:
        p = unpack(theta)
        r = [math.log(step_seconds(p, o) / o.seconds) for o in obs]
        return np.concatenate([np.array(r), math.sqrt(PRIOR_WEIGHT) * (theta - prior)])

    theta = _levenberg_marquardt(residuals, prior.copy())
    r = residuals(theta)[: len(obs)]
    return unpack(theta), bool(fit_overhead), float(np.sqrt(np.mean(r**2)))


def _levenberg_marquardt(
    fun: object, theta: np.ndarray, iters: int = 60, step: float = 1e-4
) -> np.ndarray:
    """Minimise ``|fun(theta)|^2`` (``fun`` returns residuals): damped Gauss-Newton."""
    assert callable(fun)
    lam = 1e-2
    r = fun(theta)
    cost = float(r @ r)
    for _ in range(iters):
        jac = np.empty((r.size, theta.size))
        for k in range(theta.size):
            t = theta.copy()
            t[k] += step
            jac[:, k] = (fun(t) - r) / step
        g = jac.T @ r
        h = jac.T @ jac
        improved = False
        while lam < 1e8:
            delta = np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-12), -g)
            cand = theta + delta
            rc = fun(cand)
            cc = float(rc @ rc)
            if cc < cost:
                theta, r, cost = cand, rc, cc
                lam = max(lam / 3.0, 1e-7)
                improved = True
                break
            lam *= 4.0
        if not improved or float(np.abs(delta).max()) < 1e-6:
            break
    return theta
