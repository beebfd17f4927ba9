"""Host calibration: time real training steps on this machine and write a ``table`` profile.

``fedsim profiles calibrate --output my_host.yaml`` (and :func:`calibrate`) answers "what
would a client like *this* computer cost?" by measurement instead of datasheets:

1. **Compute.** The *reference model* (the first of ``models``, default the zoo's CNN on
   1x28x28 synthetic data, batch 32) trains a few local-SGD steps through
   :func:`~fedsim.algorithms.training.local_sgd` in every setting of the grid
   ``w_bits`` x ``a_bits`` = (2, 4, 8, 32) x (4, 32):

   * W32/A32 is float training as FedAvg runs it (``torch.optim.SGD``, momentum 0.9);
   * every other entry is fake-quant training as FedMPQ's client runs it
     (:func:`~fedsim.quant.to_quantized` at ``w`` bits with ``a``-bit activations or float
     ones, :class:`~fedsim.quant.BitPlaneSGD`, group Lasso 1e-3).

   Settings are timed round-robin after a warm-up (so a background load hits them alike), and
   the median step time of each is kept. With one thread (the default) steps are timed in the
   training thread's CPU time (``time.thread_time``): on an idle host it equals wall time
   (within ~1 %), and on a busy one it leaves out the time other processes take the core
   away (it still includes their cache and memory contention). With more threads the CPU time
   of one thread says nothing, so wall time (``time.perf_counter``) is used.

   The float rate ``peak_gflops`` is measured on its own: a 512 x 512 matrix product, the
   most efficient thing the host's BLAS does. The per-class efficiencies (dense conv,
   depthwise conv, linear, element-wise; docs/hardware.md) are then fitted to the float step
   times of *every* timed model with the law and the fit of ``fedsim profiles check --fit``,
   so a host profile is priced exactly like a shipped one. Each model is also predicted from a
   fit on the *other* models only (``held_out``): the honest test of the law on this host.
   Finally each ``relative_latency`` entry is the factor at which the cost model reproduces
   that fake-quant setting's step time of the reference model (a bisection on the same
   roofline the simulator uses).

   Fake quantization runs on float units, so the quantized entries come out *above* 1 (the
   bit planes and quantizers are extra float work; W32A4, float weights with quantized
   activations, is about 1) and the table need not grow with bits: it
   is written with ``monotone: false`` (see :class:`~fedsim.hardware.schema.LatencyTable`).

2. **Other models** (default ``torchvision.mobilenet_v2`` on 3x32x32, batch 16, and
   ``resnet20`` on 3x32x32, batch 8) are timed in float and W4A4: their float steps join the
   efficiency fit, and the report gives how far the profile is from each measured step.

3. **Memory.** ``ram_mb`` is the installed RAM (psutil), ``usable_fraction`` an estimate
   (0.8), ``mem_bandwidth_gb_s`` a measured single-thread copy of a large numpy array (bytes
   read + written per second).

4. **Power** is an estimate (a host has no power meter) and the **link** is ``ethernet``;
   both are marked as such in ``sources:``.

The profile predicts *this* host's own training step at the calibration thread count; other
batch sizes follow the law (no fixed per-step overhead is fitted here). The written file is
loaded back with :func:`~fedsim.hardware.load_profile_file` before this returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.calibration.check import significant
from fedsim.calibration.fitting import HostFit, ModelCheck, cross_check, fit_host, ones_table
from fedsim.calibration.profile_file import (
    HostFacts,
    ProfileFigures,
    add_report,
    default_power,
    profile_data,
    sources,
    write_profile,
)
from fedsim.calibration.timing import (
    A_GRID,
    DEFAULT_MODELS,
    W_GRID,
    WORKLOADS,
    HostMeasurements,
    Timing,
    Workload,
    cpu_name,
    measure_host,
    step_clock,
)
from fedsim.errors import InputError
from fedsim.hardware.schema import DeviceProfile, uncited_fields

__all__ = [
    "A_GRID",
    "DEFAULT_MODELS",
    "WORKLOADS",
    "W_GRID",
    "CalibrationResult",
    "ModelCheck",
    "Timing",
    "Workload",
    "calibrate",
    "run_calibration",
    "step_clock",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class CalibrationResult:
    """Everything :func:`run_calibration` measured, the profile it wrote and where."""

    profile: DeviceProfile
    output: Path
    reference: Workload
    cpu: str
    threads: int
    peak_gflops: float
    mem_bandwidth_gb_s: float
    ram_mb: int
    timings: list[Timing] = field(default_factory=list)
    checks: list[ModelCheck] = field(default_factory=list)
    #: (workload, measured, predicted) float step seconds, each from a fit on the other models
    held_out: list[tuple[Workload, float, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def table(self) -> tuple[tuple[float, ...], ...]:
        assert self.profile.compute.latency_table is not None
        return self.profile.compute.latency_table.relative_latency


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(
            f"profile name {name!r} must start with a letter or digit and use only letters, "
            "digits, '_', '.', '-'", key="name",
        )
    return name


def _check_arguments(
    output: Path, models: Sequence[str] | str, threads: int, name: str
) -> tuple[str, ...]:
    """The models to time, after every argument is checked.

    Why first: a calibration takes a quarter of a minute or more, so a bad name, model or
    folder must fail before it starts, not when the file is written.
    """
    _check_name(name)
    if isinstance(models, str):
        models = (models,)
    if not models:
        raise InputError("give at least one model to time", key="models")
    unknown = [m for m in models if m not in WORKLOADS]
    if unknown:
        raise InputError(
            f"cannot calibrate with {unknown[0]!r}; models: {', '.join(WORKLOADS)}", key="models"
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}", key="threads")
    if not output.parent.is_dir():
        raise InputError("the folder to write the profile into does not exist", file=output)
    return tuple(models)


def _figures(
    host: HostFacts,
    meas: HostMeasurements,
    reference: Workload,
    *,
    name: str,
    device_class: str,
    reps: int,
    mem_bytes: int,
) -> ProfileFigures:
    """The profile's measured and estimated figures with their citations.

    Why before the fit: the efficiencies are fitted under the measured peak and bandwidth
    (rounded as the file states them), so the fit prices steps exactly as the written
    profile will.
    """
    import psutil

    active_w, idle_w = default_power(host.threads)
    float_step = next(t for t in meas.reference[0] if (t.w_bits, t.a_bits) == (32, 32))
    return ProfileFigures(
        name=name, device_class=device_class, description=host.description,
        peak_gflops=significant(meas.peak_gflops),
        mem_bandwidth_gb_s=significant(meas.mem_bandwidth_gb_s),
        ram_mb=int(psutil.virtual_memory().total // 2**20), active_w=active_w, idle_w=idle_w,
        sources=sources(host, reference, float_step, reps=reps, mem_bytes=mem_bytes),
    )


def _fitted_profile(
    fig: ProfileFigures, meas: HostMeasurements, say: Callable[[str], None]
) -> tuple[dict[str, Any], DeviceProfile, HostFit]:
    """Fit the efficiencies and table, and validate the result before anything is written.

    Why validate here: a profile with an uncited figure is a bug of this module, not of the
    host, and must not reach the file.
    """
    say("fitting the per-class efficiencies to the float step times ...")
    fit = fit_host(profile_data(fig, {}, ones_table()), meas)
    data = profile_data(fig, fit.efficiency, fit.table)
    prof = DeviceProfile.model_validate(data)
    missing = uncited_fields(prof)
    assert not missing, f"calibrate left figures uncited: {missing}"
    return data, prof, fit


def run_calibration(
    output: str | Path,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    threads: int = 1,
    seconds_budget: float = 15.0,
    reps: int = 5,
    name: str = "my_host",
    device_class: str = "other",
    mem_bytes: int = 64 * 2**20,
    log: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Measure this host, write its profile to ``output`` and return all the numbers.

    Args:
        output: YAML file to write (its folder must exist; an existing file is replaced).
        models: zoo models to time (:data:`WORKLOADS`); the first is the reference model the
            profile is fitted on, the others are timed in float and W4A4 as a cross-check.
        threads: ``torch.set_num_threads`` during the measurement (restored afterwards); the
            profile describes training with this many threads.
        seconds_budget: rough total time of the step timings (the reference model's grid gets
            about two thirds when there are other models).
        reps: timed repetitions per setting (the median is kept).
        name: the profile's ``name``.
        device_class: the profile's ``class`` (``other`` by default: a host may be anything).
        mem_bytes: size of the array copied to measure memory bandwidth.
        log: called with progress lines (the CLI echoes them).

    Raises:
        InputError: unknown model, bad name, threads < 1, or a missing output folder.
    """
    say = log or (lambda _msg: None)
    output = Path(output)
    models = _check_arguments(output, models, threads, name)
    started = time.perf_counter()
    host = HostFacts.now(cpu_name(), threads)
    reference = WORKLOADS[models[0]]
    others = [WORKLOADS[m] for m in dict.fromkeys(models[1:]) if m != models[0]]
    meas = measure_host(reference, others, threads=threads, seconds_budget=seconds_budget,
                        reps=reps, mem_bytes=mem_bytes, say=say)
    fig = _figures(host, meas, reference, name=name, device_class=device_class, reps=reps,
                   mem_bytes=mem_bytes)
    data, prof, fit = _fitted_profile(fig, meas, say)
    checks = cross_check(prof, meas)
    add_report(data, fit.held_out, checks)
    loaded = write_profile(output, data, host.provenance, reference)
    return CalibrationResult(
        profile=loaded, output=output, reference=reference, cpu=host.cpu, threads=threads,
        peak_gflops=fig.peak_gflops, mem_bandwidth_gb_s=fig.mem_bandwidth_gb_s,
        ram_mb=fig.ram_mb, held_out=fit.held_out, timings=meas.all_timings, checks=checks,
        seconds=time.perf_counter() - started,
    )


def calibrate(
    output: str | Path,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    threads: int = 1,
    seconds_budget: float = 15.0,
    name: str = "my_host",
    **kwargs: Any,
) -> DeviceProfile:
    """Measure this host and write its ``table`` profile to ``output``; returns the profile
    as loaded back from the file. See :func:`run_calibration` for the arguments."""
    return run_calibration(
        output, models=models, threads=threads, seconds_budget=seconds_budget, name=name,
        **kwargs,
    ).profile
