"""Name -> algorithm class. Imports lazily so validation never pays for torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedsim.algorithms.base import Algorithm

_CLASSES: dict[str, str] = {
    "fedavg": "fedsim.algorithms.fedavg:FedAvg",
    "fedmpq": "fedsim.algorithms.bitplane:FedMPQ",
    "aqfl": "fedsim.algorithms.bitplane:AQFL",
    "fpq8": "fedsim.algorithms.bitplane:FPQ8",
    "fedprox": "fedsim.algorithms.fedprox:FedProx",
    "fedpaq": "fedsim.algorithms.fedpaq:FedPAQ",
    "uveqfed": "fedsim.algorithms.uveqfed:UVeQFed",
}


def algorithm_class(name: str) -> type[Algorithm]:
    """A built-in method's class, or a plug-in's (``module:Class`` / entry point)."""
    if name not in _CLASSES:
        from fedsim.plugins import algorithm_plugin

        return algorithm_plugin(name)
    module, _, attr = _CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
