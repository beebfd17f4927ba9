"""fedsim: a hardware-aware federated-learning simulator.

Simulates FedMPQ (mixed-precision quantization for FL, Chen & Vikalo, CVPR 2024) and its
baselines on heterogeneous devices: a SimPy engine schedules clients whose real PyTorch
training runs on an executor, while simulated time, energy and memory come from hardware
profiles driven by the per-layer bit-widths.

``fedsim.run(scenario, overrides=[...])`` and ``fedsim.load_run(path)`` are the Python
entry points (docs/api.md). Importing this package is cheap on purpose (no torch): the CLI
must answer `--help` fast, so both are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "load_run", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fedsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'fedsim' has no attribute {name!r}")
