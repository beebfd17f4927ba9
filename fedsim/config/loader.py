"""Load a scenario file, apply ``--set`` overrides, validate, and name every problem.

All failures become :class:`fedsim.errors.InputError` naming the file, the key path and
what was expected; the CLI turns those into exit status 2 without a traceback. The file is
read by :func:`fedsim.yamlio.read_yaml` and schema errors are worded by
:mod:`fedsim.validation`, as for hardware profiles.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedsim.algorithms.params import ALGORITHM_PARAMS
from fedsim.config.schema import AlgorithmConfig, Scenario
from fedsim.errors import InputError, format_key_path
from fedsim.validation import validate_as, yaml_keys
from fedsim.yamlio import read_yaml, require_mapping


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario plus where it came from (relative paths resolve against it)."""

    scenario: Scenario
    path: Path | None
    raw: dict[str, Any]

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else "<scenario>"


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Parse ``a.b.0.c=value``; the value is read as YAML (``3``, ``0.1``, ``[2, 4]``)."""
    if "=" not in text:
        raise InputError(f"--set expects KEY=VALUE, got '{text}'", key="--set")
    key, _, value_text = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"--set has an empty key in '{text}'", key="--set")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        value = value_text
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``KEY=VALUE`` set (creating mappings as needed)."""
    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    raise InputError(
                        f"index {part} out of range (list has {len(node)} items)",
                        key=format_key_path(parts[: i + 1]),
                    )
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise InputError("cannot set a key inside a non-mapping value",
                                 key=format_key_path(parts[:i]))
            if part not in node or node[part] is None:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        last = parts[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise InputError("index out of range", key=format_key_path(parts))
            node[last] = value
        elif isinstance(node, dict):
            node[str(last) if not isinstance(last, int) else last] = value
        else:
            raise InputError("cannot set a key inside a non-mapping value",
                             key=format_key_path(parts[:-1]))
    return out


def validate_scenario_dict(raw: Any, *, file: str) -> Scenario:
    """Validate a scenario mapping (from a file or built in code); InputError naming ``file``."""
    require_mapping(raw, "scenario keys", file=file)
    scenario = validate_as(Scenario, raw, file=file)
    # Nested schemas chosen by a name (model options, method parameters): validated here, not
    # inside Scenario, so their errors keep the full key path.
    validate_as(scenario.model.options_schema(), scenario.model.options, file=file,
                key_prefix="model.options")
    validate_as(ALGORITHM_PARAMS[scenario.algorithm.name], scenario.algorithm.model_extra or {},
                file=file, key_prefix="algorithm", also_allowed=yaml_keys(AlgorithmConfig))
    if scenario.model.is_torchvision:
        from fedsim.models.tvzoo import validate_torchvision_options

        try:
            validate_torchvision_options(scenario.model.name, scenario.model.options)
        except InputError as exc:
            raise InputError(exc.detail, file=file, key=exc.key) from None
    return scenario


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> LoadedScenario:
    """Read, override and validate a scenario file against the schema only.

    Profiles are resolved by :func:`fedsim.run.fleet.resolve_fleet` and dataset files checked
    by :func:`fedsim.data.check_dataset_available`; ``fedsim validate`` runs all three.
    """
    p = Path(path)
    raw = apply_overrides(read_yaml(p, mapping_of="scenario keys"), overrides)
    scenario = validate_scenario_dict(raw, file=str(p))
    return LoadedScenario(scenario=scenario, path=p, raw=raw)
