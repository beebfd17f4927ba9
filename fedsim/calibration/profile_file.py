"""The profile file ``fedsim profiles calibrate`` writes: figures, citations and report.

A host profile must pass the same checks as a shipped one: every figure cited, the estimates
marked as such (:func:`~fedsim.hardware.schema.uncited_fields`,
:func:`~fedsim.hardware.schema.estimated_fields`). So the citations are written here, next
to the figures they cite, and the held-out test and cross-check are written into the
citation of the fitted figures, where a reader of the file looks for how good they are.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.calibration.fitting import ModelCheck
from fedsim.calibration.timing import A_GRID, W_GRID, Timing, Workload
from fedsim.hardware.schema import DeviceProfile

USABLE_FRACTION = 0.8
LINK = "ethernet"


@dataclass(frozen=True)
class HostFacts:
    """Which host, when and with what: the words every citation and the header repeat."""

    cpu: str
    when: str  # "2025-01-31 12:00 UTC"
    torch_version: str
    threads: int

    @classmethod
    def now(cls, cpu: str, threads: int) -> HostFacts:
        import torch

        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return cls(cpu, when, torch.__version__, threads)

    @property
    def provenance(self) -> str:
        return (
            f"fedsim profiles calibrate on {self.cpu} at {self.when}, torch "
            f"{self.torch_version}, {self.threads} thread(s)"
        )

    @property
    def description(self) -> str:
        return (
            f"this host ({self.cpu}), CPU training with {self.threads} thread(s), "
            f"calibrated {self.when}"
        )

    @property
    def clock_name(self) -> str:
        """How steps were timed (:func:`~fedsim.calibration.timing.step_clock`)."""
        return "the training thread's CPU time" if self.threads == 1 else "wall time"


@dataclass(frozen=True)
class ProfileFigures:
    """Everything of the profile but the fitted efficiencies and table."""

    name: str
    device_class: str
    description: str
    peak_gflops: float
    mem_bandwidth_gb_s: float
    ram_mb: int
    active_w: float
    idle_w: float
    sources: list[dict[str, Any]]


def default_power(threads: int) -> tuple[float, float]:
    """(active_w, idle_w) guess: a 10 W platform idle plus ~6 W per busy core."""
    idle = 10.0
    return idle + 6.0 * threads, idle


def profile_data(
    fig: ProfileFigures, efficiency: dict[str, float], table: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """The profile as the dict written to YAML (and fitted: see
    :mod:`~fedsim.calibration.fitting`). ``monotone: false`` because fake quantization runs
    on float units, so the table need not fall with bits."""
    return {
        "name": fig.name,
        "class": fig.device_class,
        "description": fig.description,
        "compute": {
            "mode": "table",
            "peak_gflops": fig.peak_gflops,
            "efficiency": dict(efficiency),
            "mem_bandwidth_gb_s": fig.mem_bandwidth_gb_s,
            "latency_table": {
                "w_bits": list(W_GRID),
                "a_bits": list(A_GRID),
                "relative_latency": [list(r) for r in table],
                "monotone": False,
            },
        },
        "power": {"model": "measured", "active_w": fig.active_w, "idle_w": fig.idle_w},
        "memory": {"ram_mb": fig.ram_mb, "usable_fraction": USABLE_FRACTION},
        "link": LINK,
        "sources": fig.sources,
    }


def sources(
    host: HostFacts, reference: Workload, float_step: Timing, *, reps: int, mem_bytes: int
) -> list[dict[str, Any]]:
    """The ``sources:`` of the profile: one citation per figure, estimates marked."""
    provenance = host.provenance
    return [
        {
            "fields": ["compute.efficiency", "compute.latency_table"],
            "cite": provenance,
            "note": (
                f"measured: median step time of local SGD on {reference.label}, synthetic "
                f"data, {reps} repetitions after warm-up, in {host.clock_name}; float = "
                "torch.optim.SGD "
                f"{float_step.step_s * 1e3:.3g} ms/step, fake-quant = bit planes + "
                "BitPlaneSGD + group Lasso. The efficiencies are fitted (fedsim profiles "
                "check's law and fit) to the float step times of every timed model; the table "
                "is each setting's time relative to float, fitted through fedsim's roofline on "
                "the first model"
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
                    f"~10 W platform idle + ~6 W per busy core x {host.threads} thread(s)",
            "estimate": True,
            "note": "measure at the wall (training vs idle) and replace active_w / idle_w",
        },
    ]


def add_report(
    data: dict[str, Any],
    held_out: Sequence[tuple[Workload, float, float]],
    checks: Sequence[ModelCheck],
) -> None:
    """Append the held-out test and the cross-check to the fitted figures' citation."""
    cited = data["sources"][0]
    if held_out:
        cited["note"] += " (held out, each model predicted from the others' fit: " + (
            "; ".join(f"{wl.label} measured {m * 1e3:.3g} ms/step, predicted {p * 1e3:.3g} ms "
                      f"({p / m - 1:+.0%})" for wl, m, p in held_out)) + ")"
    if checks:
        cited["note"] += " (cross-check: " + "; ".join(
            f"{c.workload.label} W{c.w_bits}A{c.a_bits} measured {c.measured_s * 1e3:.3g} "
            f"ms/step, predicted {c.predicted_s * 1e3:.3g} ms ({c.error:+.0%})"
            for c in checks
        ) + ")"


def render(data: dict[str, Any], provenance: str, reference: Workload, version: str) -> str:
    """The YAML text: a header saying what was measured and what is estimated, then ``data``."""
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


def write_profile(
    output: Path, data: dict[str, Any], provenance: str, reference: Workload
) -> DeviceProfile:
    """Write ``data`` to ``output`` and load it back, so what is returned is what the file
    says (and a file the loader would refuse never passes silently)."""
    from fedsim import __version__ as fedsim_version
    from fedsim.hardware.loader import load_profile_file

    output.write_text(render(data, provenance, reference, fedsim_version), encoding="utf-8")
    return load_profile_file(output)
