"""Every file a run reads, fingerprinted, so a resumed run is the run that was started.

``run.json`` lists the scenario, the device and link profile files of the fleet, trace
files, the split file and the dataset files (:mod:`fedsim.records.fingerprints`).
``fedsim run --resume`` refuses, naming the file, when one differs; ``fedsim verify``
reports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedsim.config.loader import LoadedScenario
from fedsim.errors import InputError
from fedsim.records.fingerprints import changed, fingerprint
from fedsim.runner.fleet import FleetClient


def input_files(loaded: LoadedScenario, profiles: Iterable[Path]) -> list[Path]:
    """The files the run reads, in a stable order, each once."""
    from fedsim.data.datasets import dataset_files

    sc = loaded.scenario
    files: list[Path] = [] if loaded.path is None else [loaded.path]
    files += sorted(set(profiles))
    traces = [sc.availability.trace] + [g.availability.trace for g in sc.fleet
                                        if g.availability is not None]
    if sc.data.partition.kind == "file" and sc.data.partition.path:
        traces.append(sc.data.partition.path)
    for ref in traces:
        if ref:
            p = Path(ref)
            files.append(p if p.is_absolute() else loaded.base_dir / p)
    if not sc.system_only.enabled:
        files += dataset_files(sc.data.dataset, root=sc.data.root)
    seen: dict[Path, None] = {}
    for f in files:
        seen.setdefault(f.resolve(), None)
    return [f for f in seen if f.is_file()]


def run_fingerprints(loaded: LoadedScenario,
                     fleet: Iterable[FleetClient]) -> list[dict[str, Any]]:
    """Fingerprints of every file the run reads (what ``run.json`` records)."""
    profiles = {f for c in fleet for f in c.profile_files}
    return [fingerprint(f) for f in input_files(loaded, profiles)]


def refuse_if_changed(recorded: Sequence[Mapping[str, Any]], run_json: Path) -> None:
    """Resume only over the same inputs: exit 2 naming the first file that changed."""
    diffs = changed(recorded)
    if diffs:
        first = diffs[0].split(": ", 1)
        raise InputError(f"{first[1]} since the run started, so resuming would not continue "
                         "the same run; start a new run"
                         + (f" ({len(diffs) - 1} more changed)" if len(diffs) > 1 else ""),
                         file=first[0], key=None)
