"""What a finished run says about itself: ``summary.json`` and the resolved scenario.

Only this file of a run folder holds host facts (wall time, peak memory, torch build, CPU):
the record files stay deterministic, the summary tells how the machine fared.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from typing import Any

from fedsim.config.schema import Scenario
from fedsim.records.schema import OK
from fedsim.spec import ModelSpec


def resolved_scenario_dict(sc: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in (what ``scenario.yaml`` of a run holds)."""
    data = sc.model_dump(mode="json")
    data["algorithm"] = {**data["algorithm"], **sc.algorithm.method_params().model_dump()}
    data["model"]["options"] = sc.model.resolved_options()
    if sc.execution.batch_clients == 1:  # the default: run folders stay as before batching
        del data["execution"]["batch_clients"]
    return data


def _host_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "platform": platform.platform(),
    }


def _peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_workers_mb": round(children, 1)}


def client_round_counts(counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values())
    lost = {k: v for k, v in sorted(counts.items()) if k != OK}
    return {"total": total, "ok": counts.get(OK, 0), "lost": lost,
            "participation_rate": (counts.get(OK, 0) / total) if total else None}


def run_summary(sc: Scenario, run_id: str, rounds: list[Any], spec: ModelSpec, t0: float,
             executor: Any) -> dict[str, Any]:
    accs = [r.accuracy for r in rounds]
    last = rounds[-1] if rounds else None
    return {
        "run_id": run_id,
        "scenario": sc.name,
        "algorithm": sc.algorithm.name,
        "seed": sc.seed,
        "rounds": len(rounds),
        "clients": sc.n_clients,
        "model": {"name": spec.name, "quantized_layers": spec.n_quantized,
                  "params": spec.total_params, "macs_per_sample": spec.macs_per_sample},
        "final_accuracy": last.accuracy if last else None,
        "best_accuracy": max(accs) if accs else None,
        "final_loss": last.loss if last else None,
        "sim_time_s": last.sim_time_s if last else 0.0,
        "energy_j": last.energy_j if last else 0.0,
        "stragglers": sum(r.stragglers for r in rounds),
        "infeasible": sum(r.infeasible for r in rounds),
        "dropouts": sum(r.dropouts for r in rounds),
        "offline": sum(r.offline for r in rounds),
        "battery": sum(r.battery for r in rounds),
        "host": {
            "wall_s": round(time.perf_counter() - t0, 3),
            **_peak_rss_mb(),
            "executor": ("process" if executor.executor == "inline" and executor.workers > 1
                         else executor.executor),
            "workers": executor.workers,
            "threads": executor.threads,
            # only when set: a run without batching keeps the summary it always had
            **({"batch_clients": executor.batch_clients} if executor.batch_clients > 1
               else {}),
            "argv": sys.argv,
            **_host_info(),
        },
    }
