"""Measuring this host for ``fedsim profiles calibrate``: its facts, rates and step times.

Everything here is a measurement (or a fact the OS reports); nothing is fitted. The fit is
:mod:`~fedsim.calibration.fitting`, the profile file :mod:`~fedsim.calibration.profile_file`
and the command :mod:`~fedsim.calibration.host`, whose docstring says what is timed and why.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Grid of the measured latency table (both axes end at 32 = float, as the schema requires).
W_GRID: tuple[int, ...] = (2, 4, 8, 32)
A_GRID: tuple[int, ...] = (4, 32)
#: Settings timed on the non-reference models, as a cross-check: (w_bits, a_bits).
CHECK_SETTINGS: tuple[tuple[int, int], ...] = ((32, 32), (4, 4))
DEFAULT_MODELS: tuple[str, ...] = ("cnn", "mobilenet_v2", "resnet20")
#: FedMPQ client hyper-parameters (docs/algorithm.md sections 3-4); speed does not depend on
#: their values.
_FLOAT_LR, _PLANE_LR, _MOMENTUM, _LAMBDA = 0.05, 0.25, 0.9, 1e-3


@dataclass(frozen=True)
class Workload:
    """A model of the zoo on synthetic data of one shape, trained at one batch size."""

    model: str
    in_channels: int
    image_size: int
    batch_size: int
    num_classes: int = 10

    @property
    def label(self) -> str:
        return (
            f"{self.model} ({self.in_channels}x{self.image_size}x{self.image_size}, "
            f"batch {self.batch_size})"
        )


WORKLOADS: dict[str, Workload] = {
    "cnn": Workload("cnn", 1, 28, 32),
    "mobilenet_v2": Workload("torchvision.mobilenet_v2", 3, 32, 16),
    "resnet20": Workload("resnet20", 3, 32, 8),
}


@dataclass(frozen=True)
class Timing:
    """Median time of one local-SGD step of ``workload`` at ``w_bits`` x ``a_bits``."""

    workload: Workload
    w_bits: int
    a_bits: int  # 32 = float activations
    step_s: float
    steps_per_rep: int
    reps: tuple[float, ...]  # seconds per step of each repetition


#: The step timings of one model and its layer table: ``(timings, spec)``.
ModelTimings = tuple[list[Timing], Any]


@dataclass(frozen=True)
class HostMeasurements:
    """What one calibration measured, before anything is fitted."""

    mem_bandwidth_gb_s: float  # unrounded
    peak_gflops: float  # unrounded
    reference: ModelTimings  # every grid setting of the reference model
    others: list[ModelTimings]  # CHECK_SETTINGS of each other model

    @property
    def all_timings(self) -> list[Timing]:
        """Every timing, the reference model's first."""
        return [*self.reference[0], *(t for ts, _ in self.others for t in ts)]


# ----------------------------------------------------------------------------- host facts


def cpu_name() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")):
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=5, check=False)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure_peak_gflops(n: int = 512, reps: int = 20) -> float:
    """The host's float rate in G ops/s: a square ``n x n`` matrix product (2 n^3 flops) in
    torch at the current thread count, median of ``reps`` after a warm-up.

    Why a matrix product: it is the most efficient thing the host's BLAS does, so it stands
    for ``peak_gflops`` and the fitted efficiencies say how far each operator class of real
    training falls below it, exactly as for a datasheet peak.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    a @ b  # warm-up
    times = []
    for _ in range(max(3, reps)):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def measure_mem_bandwidth(nbytes: int = 64 * 2**20, reps: int = 5) -> float:
    """Copy bandwidth in GB/s: ``2 nbytes`` (read + write) over the median time of a copy."""
    import numpy as np

    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page first
    times = []
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2.0 * src.nbytes / statistics.median(times) / 1e9


# ----------------------------------------------------------------------------- timing


def _trainer(workload: Workload, w_bits: int, a_bits: int, seed: int = 0) -> tuple[Any, ...]:
    """(model, optimizer, regulariser, spec) as FedAvg (float) or FedMPQ's client (fake-quant)
    trains."""
    import torch

    from fedsim.models import build_model, model_spec
    from fedsim.quant import BitPlaneSGD, group_lasso, to_quantized

    torch.manual_seed(seed)
    wl = workload
    model = build_model(
        wl.model, in_channels=wl.in_channels, num_classes=wl.num_classes,
        image_size=wl.image_size,
    )
    spec = model_spec(model, name=wl.model, input_shape=(wl.in_channels, wl.image_size,
                                                         wl.image_size))
    if w_bits == 32 and a_bits == 32:
        opt = torch.optim.SGD(model.parameters(), lr=_FLOAT_LR, momentum=_MOMENTUM,
                              weight_decay=5e-4)
        return model, opt, None, spec
    qmodel = to_quantized(model, [w_bits] * spec.n_quantized,
                          act_bits=None if a_bits == 32 else a_bits)
    opt = BitPlaneSGD(qmodel, lr=_PLANE_LR, momentum=_MOMENTUM, weight_decay=0.0)
    return qmodel, opt, (lambda: group_lasso(qmodel, _LAMBDA)), spec


def step_clock(threads: int) -> Callable[[], float]:
    """The clock calibration times steps with: the thread's CPU time for one thread, else
    wall time (see :mod:`~fedsim.calibration.host`)."""
    return time.thread_time if threads == 1 else time.perf_counter


def time_settings(
    workload: Workload,
    settings: Sequence[tuple[int, int]],
    *,
    seconds_budget: float,
    reps: int,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[Timing], Any]:
    """Median seconds per local-SGD step of ``workload`` at each (w_bits, a_bits) setting.

    Each setting gets about ``seconds_budget / len(settings)``: two warm-up steps, a two-step
    estimate that sets how many steps one repetition runs (2..64), then ``reps`` repetitions,
    taken round-robin over the settings, each timed with ``clock``. Returns the timings and
    the model's spec.
    """
    import torch

    from fedsim.algorithms.training import local_sgd

    wl = workload
    per_rep = seconds_budget / max(1, len(settings)) / (reps + 1)
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.randn(64 * wl.batch_size, wl.in_channels, wl.image_size, wl.image_size,
                        generator=gen)
    y_all = torch.randint(0, wl.num_classes, (x_all.shape[0],), generator=gen)

    def epoch(tr: tuple[Any, ...], steps: int) -> float:
        model, opt, reg, _ = tr
        n = steps * wl.batch_size
        t0 = clock()
        local_sgd(model, x_all[:n], y_all[:n], optimizer=opt, batch_size=wl.batch_size,
                  epochs=1, generator=gen, regulariser=reg)
        return clock() - t0

    trainers, steps, spec = [], [], None
    for w, a in settings:
        tr = _trainer(wl, w, a, seed)
        spec = tr[3]
        epoch(tr, 2)  # warm-up: allocations, optimizer state, kernel selection
        estimate = epoch(tr, 2) / 2
        trainers.append(tr)
        steps.append(int(min(64, max(2, round(per_rep / max(estimate, 1e-6))))))
    per_step: list[list[float]] = [[] for _ in settings]
    for _ in range(max(1, reps)):
        for i, tr in enumerate(trainers):
            per_step[i].append(epoch(tr, steps[i]) / steps[i])
    timings = [
        Timing(wl, w, a, statistics.median(ts), steps[i], tuple(ts))
        for i, ((w, a), ts) in enumerate(zip(settings, per_step, strict=True))
    ]
    return timings, spec


def measure_host(
    reference: Workload,
    others: Sequence[Workload],
    *,
    threads: int,
    seconds_budget: float,
    reps: int,
    mem_bytes: int,
    say: Callable[[str], None],
) -> HostMeasurements:
    """Every measurement of one calibration, taken at ``threads`` torch threads.

    Why one step for all of them: the profile describes training at that thread count, so the
    matrix-product peak and every step time must be taken under it; the caller's thread count
    is restored even when a measurement fails. The budget is shared in proportion to the
    number of settings, so the reference grid gets most of it.
    """
    import torch

    grid = [(w, a) for w in W_GRID for a in A_GRID]
    n_settings = len(grid) + len(CHECK_SETTINGS) * len(others)
    clock = step_clock(threads)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        say(f"memory bandwidth: copying {mem_bytes / 2**20:.0f} MiB ...")
        mem_bw = measure_mem_bandwidth(mem_bytes, reps=max(3, reps))
        say("float rate: timing a 512 x 512 matrix product ...")
        peak = measure_peak_gflops()
        say(f"timing {reference.label}: {len(grid)} settings ...")
        ref = time_settings(
            reference, grid, seconds_budget=seconds_budget * len(grid) / n_settings, reps=reps,
            clock=clock,
        )
        other_timings = []
        for wl in others:
            say(f"timing {wl.label}: float and W4A4 (cross-check) ...")
            other_timings.append(time_settings(
                wl, CHECK_SETTINGS,
                seconds_budget=seconds_budget * len(CHECK_SETTINGS) / n_settings, reps=reps,
                clock=clock,
            ))
    finally:
        torch.set_num_threads(old_threads)
    return HostMeasurements(mem_bw, peak, ref, other_timings)
