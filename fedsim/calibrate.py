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

import datetime
import math
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.errors import InputError
from fedsim.hardware.schema import DeviceProfile, uncited_fields

#: Grid of the measured latency table (both axes end at 32 = float, as the schema requires).
W_GRID: tuple[int, ...] = (2, 4, 8, 32)
A_GRID: tuple[int, ...] = (4, 32)
#: Settings timed on the non-reference models, as a cross-check: (w_bits, a_bits).
CHECK_SETTINGS: tuple[tuple[int, int], ...] = ((32, 32), (4, 4))
DEFAULT_MODELS: tuple[str, ...] = ("cnn", "mobilenet_v2", "resnet20")
USABLE_FRACTION = 0.8
LINK = "ethernet"
#: FedMPQ client hyper-parameters (FEDMPQ.md defaults); speed does not depend on their values.
_FLOAT_LR, _PLANE_LR, _MOMENTUM, _LAMBDA = 0.05, 0.25, 0.9, 1e-3
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


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
    wall time (see the module docstring)."""
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


# ----------------------------------------------------------------------------- fitting


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


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _profile_data(
    *,
    name: str,
    device_class: str,
    description: str,
    peak_gflops: float,
    efficiency: dict[str, float],
    table: Sequence[Sequence[float]],
    mem_bw: float,
    ram_mb: int,
    active_w: float,
    idle_w: float,
    sources: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "name": name,
        "class": device_class,
        "description": description,
        "compute": {
            "mode": "table",
            "peak_gflops": peak_gflops,
            "efficiency": dict(efficiency),
            "mem_bandwidth_gb_s": mem_bw,
            "latency_table": {
                "w_bits": list(W_GRID),
                "a_bits": list(A_GRID),
                "relative_latency": [list(r) for r in table],
                "monotone": False,
            },
        },
        "power": {"model": "measured", "active_w": active_w, "idle_w": idle_w},
        "memory": {"ram_mb": ram_mb, "usable_fraction": USABLE_FRACTION},
        "link": LINK,
        "sources": sources,
    }


def _step_cost(data: dict[str, Any], spec: Any, w: int, a: int, batch: int) -> float:
    from fedsim.hardware.compute import train_cost

    prof = DeviceProfile.model_validate(data)
    return train_cost(prof, spec, [w] * spec.n_quantized, act_bits=None if a == 32 else a,
                      batch_size=batch, steps=1).time_s


def fit_efficiencies(
    base: dict[str, Any], float_timings: Sequence[tuple[Any, Timing]]
) -> tuple[dict[str, float], float]:
    """Per-class efficiencies that reproduce the float step times of every timed model
    (``(spec, timing)`` pairs) under ``base``'s measured peak and bandwidth; and the rms
    log error of that fit. The law and the fit are those of ``fedsim profiles check --fit``."""
    from fedsim.calibration.check import Observation, fit_observations
    from fedsim.hardware.schema import OP_CLASSES

    prof = DeviceProfile.model_validate(base)
    obs = [Observation(spec, t.workload.batch_size, 32, t.step_s, t.workload.model)
           for spec, t in float_timings]
    fitted, _, rms = fit_observations(prof, obs, fit_overhead=False)
    return {c: _sig(fitted.compute.efficiency.of(c)) for c in OP_CLASSES}, rms


def leave_one_out(
    base: dict[str, Any], float_timings: Sequence[tuple[Any, Timing]]
) -> list[tuple[Workload, float, float]]:
    """For each model: its float step time predicted by efficiencies fitted on the *other*
    models only (a held-out test of the law on this host). ``(workload, measured, predicted)``.
    """
    from fedsim.calibration.check import Observation, step_seconds

    out = []
    for i, (spec, t) in enumerate(float_timings):
        rest = [ft for j, ft in enumerate(float_timings) if j != i]
        if not rest:
            continue
        eff, _ = fit_efficiencies(base, rest)
        prof = DeviceProfile.model_validate(
            {**base, "compute": {**base["compute"], "efficiency": eff}})
        pred = step_seconds(prof, Observation(spec, t.workload.batch_size, 32, t.step_s))
        out.append((t.workload, t.step_s, pred))
    return out


def fit_table(base: dict[str, Any], spec: Any, timings: Sequence[Timing]) -> list[list[float]]:
    """Invert the cost model: the relative-latency grid that reproduces ``timings`` (one per
    grid setting, of the reference model) under ``base``'s fitted efficiencies."""
    by = {(t.w_bits, t.a_bits): t for t in timings}
    batch = timings[0].workload.batch_size
    ones = [[1.0] * len(A_GRID) for _ in W_GRID]

    def with_(table: list[list[float]]) -> dict[str, Any]:
        d = dict(base)
        d["compute"] = {**base["compute"],
                        "latency_table": {**base["compute"]["latency_table"],
                                          "relative_latency": table}}
        return d

    table = [row[:] for row in ones]
    for i, w in enumerate(W_GRID):
        for j, a in enumerate(A_GRID):
            if (w, a) == (32, 32):
                continue

            def cost(r: float, i: int = i, j: int = j, w: int = w, a: int = a) -> float:
                t = [row[:] for row in ones]
                t[i][j] = r
                return _step_cost(with_(t), spec, w, a, batch)

            table[i][j] = _sig(_solve_log(cost, by[(w, a)].step_s, 1e-3, 1e3))
    return table


# ----------------------------------------------------------------------------- driver


def _default_power(threads: int) -> tuple[float, float]:
    """(active_w, idle_w) guess: a 10 W platform idle plus ~6 W per busy core."""
    idle = 10.0
    return idle + 6.0 * threads, idle


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(
            f"profile name {name!r} must start with a letter or digit and use only letters, "
            "digits, '_', '.', '-'", key="name",
        )
    return name


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
    import psutil
    import torch

    from fedsim import __version__ as fedsim_version
    from fedsim.hardware.compute import train_cost
    from fedsim.hardware.loader import load_profile_file

    say = log or (lambda _msg: None)
    output = Path(output)
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

    started = time.perf_counter()
    cpu = cpu_name()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    torch_ver = torch.__version__
    provenance = (
        f"fedsim profiles calibrate on {cpu} at {when}, torch {torch_ver}, "
        f"{threads} thread(s)"
    )
    reference = WORKLOADS[models[0]]
    others = [WORKLOADS[m] for m in dict.fromkeys(models[1:]) if m != models[0]]
    grid = [(w, a) for w in W_GRID for a in A_GRID]
    n_settings = len(grid) + len(CHECK_SETTINGS) * len(others)
    clock = step_clock(threads)
    clock_name = "the training thread's CPU time" if threads == 1 else "wall time"

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        say(f"memory bandwidth: copying {mem_bytes / 2**20:.0f} MiB ...")
        mem_bw = _sig(measure_mem_bandwidth(mem_bytes, reps=max(3, reps)))
        say("float rate: timing a 512 x 512 matrix product ...")
        peak = _sig(measure_peak_gflops())
        say(f"timing {reference.label}: {len(grid)} settings ...")
        ref_timings, ref_spec = time_settings(
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

    ram_mb = int(psutil.virtual_memory().total // 2**20)
    active_w, idle_w = _default_power(threads)
    ref_steps = {(t.w_bits, t.a_bits): t for t in ref_timings}
    float_t = ref_steps[(32, 32)]
    sources: list[dict[str, Any]] = [
        {
            "fields": ["compute.efficiency", "compute.latency_table"],
            "cite": provenance,
            "note": (
                f"measured: median step time of local SGD on {reference.label}, synthetic "
                f"data, {reps} repetitions after warm-up, in {clock_name}; float = "
                "torch.optim.SGD "
                f"{float_t.step_s * 1e3:.3g} ms/step, fake-quant = bit planes + BitPlaneSGD + "
                "group Lasso. The efficiencies are fitted (fedsim profiles check's law and fit) "
                "to the float step times of every timed model; the table is each setting's "
                "time relative to float, fitted through fedsim's roofline on the first model"
            ),
        },
        {
            "fields": ["compute.peak_gflops"],
            "cite": provenance,
            "note": "measured: median rate of a 512 x 512 float32 matrix product in torch "
                    "(2 n^3 flops) at this thread count",
        },
        {
            "fields": ["compute.mem_bandwidth_gb_s"],
            "cite": provenance,
            "note": f"measured: single-thread numpy copy of {mem_bytes // 2**20} MiB, "
                    "bytes read + written per second (median)",
        },
        {
            "fields": ["memory.ram_mb"],
            "cite": provenance,
            "note": "installed RAM as the OS reports it (psutil.virtual_memory().total)",
        },
        {
            "fields": ["memory.usable_fraction"],
            "cite": "fedsim estimate: a desktop OS and its apps leave ~80 % to one training "
                    "process",
            "estimate": True,
        },
        {
            "fields": ["power"],
            "cite": "fedsim estimate, not measured: this host has no power meter; "
                    f"~10 W platform idle + ~6 W per busy core x {threads} thread(s)",
            "estimate": True,
            "note": "measure at the wall (training vs idle) and replace active_w / idle_w",
        },
    ]
    description = (
        f"this host ({cpu}), CPU training with {threads} thread(s), calibrated {when}"
    )
    ones = [[1.0] * len(A_GRID) for _ in W_GRID]
    base = _profile_data(
        name=name, device_class=device_class, description=description, peak_gflops=peak,
        efficiency={}, table=ones, mem_bw=mem_bw, ram_mb=ram_mb, active_w=active_w,
        idle_w=idle_w, sources=sources,
    )
    float_timings = [(ref_spec, float_t)] + [
        (spec, next(t for t in ts if (t.w_bits, t.a_bits) == (32, 32)))
        for ts, spec in other_timings
    ]
    say("fitting the per-class efficiencies to the float step times ...")
    efficiency, _rms = fit_efficiencies(base, float_timings)
    held_out = leave_one_out(base, float_timings)
    base["compute"]["efficiency"] = efficiency
    table = fit_table(base, ref_spec, ref_timings)
    data = _profile_data(
        name=name, device_class=device_class, description=description, peak_gflops=peak,
        efficiency=efficiency, table=table, mem_bw=mem_bw, ram_mb=ram_mb, active_w=active_w,
        idle_w=idle_w, sources=sources,
    )
    prof = DeviceProfile.model_validate(data)
    missing = uncited_fields(prof)
    assert not missing, f"calibrate left figures uncited: {missing}"

    checks: list[ModelCheck] = []
    for timings, spec in other_timings:
        by = {(t.w_bits, t.a_bits): t for t in timings}
        own = 2.0 * 3.0 * spec.macs_per_sample * timings[0].workload.batch_size
        for t in timings:
            pred = train_cost(
                prof, spec, [t.w_bits] * spec.n_quantized,
                act_bits=None if t.a_bits == 32 else t.a_bits,
                batch_size=t.workload.batch_size, steps=1,
            ).time_s
            checks.append(ModelCheck(t.workload, t.w_bits, t.a_bits, t.step_s, pred,
                                     own / by[(32, 32)].step_s / 1e9))
    if held_out:
        sources[0]["note"] += " (held out, each model predicted from the others' fit: " + (
            "; ".join(f"{wl.label} measured {m * 1e3:.3g} ms/step, predicted {p * 1e3:.3g} ms "
                      f"({p / m - 1:+.0%})" for wl, m, p in held_out)) + ")"
    if checks:
        sources[0]["note"] += " (cross-check: " + "; ".join(
            f"{c.workload.label} W{c.w_bits}A{c.a_bits} measured {c.measured_s * 1e3:.3g} "
            f"ms/step, predicted {c.predicted_s * 1e3:.3g} ms ({c.error:+.0%})"
            for c in checks
        ) + ")"

    output.write_text(_render(data, provenance, reference, fedsim_version), encoding="utf-8")
    loaded = load_profile_file(output)
    return CalibrationResult(
        profile=loaded, output=output, reference=reference, cpu=cpu, threads=threads,
        peak_gflops=peak, mem_bandwidth_gb_s=mem_bw, ram_mb=ram_mb, held_out=held_out,
        timings=[*ref_timings, *(t for ts, _ in other_timings for t in ts)], checks=checks,
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


def _render(data: dict[str, Any], provenance: str, reference: Workload, version: str) -> str:
    import yaml

    header = (
        f"# Written by fedsim {version}: {provenance}.\n"
        "# compute: peak_gflops is a measured matrix-product rate; the per-class efficiencies\n"
        "# are fitted to timed float local-SGD steps of every calibration model; latency_table\n"
        f"# is each fake-quant setting's time (bit planes, BitPlaneSGD, group Lasso) of\n"
        f"# {reference.label} relative to float. Fake quantization runs on float units, so\n"
        "# quantized entries are above 1 and the table is not monotone in bits (monotone: false).\n"
        "# Memory bandwidth and RAM are measured; usable_fraction and power are estimates.\n"
        "# It predicts this host's own local-epoch time at this batch size and thread count;\n"
        "# re-run after changing the hardware, torch or the thread count.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100,
                          allow_unicode=True)
    return header + body
