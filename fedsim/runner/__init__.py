"""Running a scenario: build its parts, drive the engine, own the run folder.

``build`` resolves and checks every input (nothing is written), ``simulation`` executes
(run folder, engine, checkpoints), ``fleet`` and ``cost`` give the engine its clients and
its cost oracle, ``ports`` and ``synthetic`` are the engine's two doors to training (real,
or none for system-only studies), ``checkpoint`` / ``resume`` / ``seeds`` / ``summary`` /
``progress`` serve them. ``from fedsim.runner import run_scenario`` is the Python entry point.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_scenario"]


def __getattr__(name: str) -> Any:
    # Lazy: importing fedsim.runner.fleet (e.g. by `fedsim validate`) must not pull in the
    # run loop and, through it, torch.
    if name == "run_scenario":
        from fedsim.runner.simulation import run_scenario

        return run_scenario
    raise AttributeError(name)
