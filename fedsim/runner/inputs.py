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


def profile_files(loaded: LoadedScenario) -> list[Path]:
    """The device and link profile files the fleet's groups use."""
    from fedsim.hardware import ProfileLibrary

    sc = loaded.scenario
    lib = ProfileLibrary.load(sc.profiles, base_dir=loaded.base_dir, source_file=loaded.label)
    out = []
    for g in sc.fleet:
        out.append(lib.source_of(g.profile))
        link = g.link or lib.get(g.profile).link
        name = link if isinstance(link, str) else getattr(link, "name", None)
        if name and name in lib.links():
            out.append(lib.source_of(name) if name not in lib.names() else out[-1])
    return out


def run_fingerprints(loaded: LoadedScenario) -> list[dict[str, Any]]:
    """Fingerprints of every file the run reads (what ``run.json`` records)."""
    return [fingerprint(f) for f in input_files(loaded, profile_files(loaded))]


def refuse_if_changed(recorded: Sequence[Mapping[str, Any]], run_json: Path) -> None:
    """Resume only over the same inputs: exit 2 naming the first file that changed."""
    diffs = changed(recorded)
    if diffs:
        first = diffs[0].split(": ", 1)
        raise InputError(f"{first[1]} since the run started, so resuming would not continue "
                         "the same run; start a new run"
                         + (f" ({len(diffs) - 1} more changed)" if len(diffs) > 1 else ""),
                         file=first[0], key=None)
