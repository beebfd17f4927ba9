"""Find an interrupted run and check it may be continued with the scenario at hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from fedsim.config.loader import LoadedScenario, load_scenario
from fedsim.errors import InputError

# Keys that change how fast a run goes, never what it computes (the thread count and the
# evaluation batch change the order of float sums, so they must stay).
IGNORED = {("execution", "workers"), ("execution", "executor"), ("execution", "ray_address")}


class AlreadyFinished(Exception):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(str(path))


def locate(run_dir: Path) -> Path:
    """The hidden partial folder of ``run_dir`` (given as the run's name or the partial)."""
    if (run_dir / "summary.json").is_file():
        raise AlreadyFinished(run_dir)
    if run_dir.name.startswith(".") and run_dir.name.endswith(".partial"):
        partial = run_dir
    else:
        partial = run_dir.parent / f".{run_dir.name}.partial"
    if not (partial / "run.json").is_file():
        raise InputError(
            f"no interrupted run here (looked for {partial}/run.json)", file=run_dir
        )
    return partial


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if (*path.split("."), key) in IGNORED:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return (sub, a.get(key, "<absent>"), b.get(key, "<absent>"))
            d = _first_difference(a[key], b[key], sub)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else (path, a, b)


def prepare(run_dir: Path, scenario_file: Path | None,
            overrides: Sequence[str]) -> tuple[LoadedScenario, Path, list[str]]:
    """(scenario to continue with, partial folder, overrides) — or InputError on a change."""
    from fedsim.runner.summary import resolved_scenario_dict

    partial = locate(run_dir)
    meta = json.loads((partial / "run.json").read_text(encoding="utf-8"))
    if scenario_file is None:
        if not meta.get("source"):
            raise InputError("the run does not record its scenario file: give SCENARIO",
                             file=partial / "run.json")
        scenario_file = Path(meta["source"])
        overrides = [*meta.get("overrides", []), *overrides]
    loaded = load_scenario(scenario_file, overrides)
    saved = yaml.safe_load((partial / "scenario.yaml").read_text(encoding="utf-8"))
    now = json.loads(json.dumps(resolved_scenario_dict(loaded.scenario)))
    diff = _first_difference(saved, now)
    if diff:
        key, was, is_ = diff
        raise InputError(
            f"the scenario changed since the run started ({was!r} then, {is_!r} now); "
            "start a new run instead of resuming",
            file=scenario_file, key=key,
        )
    from fedsim.runner.inputs import refuse_if_changed

    refuse_if_changed(meta.get("inputs", []), partial / "run.json")
    return loaded, partial, list(overrides)
