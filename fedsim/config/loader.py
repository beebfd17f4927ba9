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

from fedsim.algorithms.params import ALGORITHM_PARAMS, params_schema
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
    notes: tuple[str, ...] = ()  # things worth saying that are not errors

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


def other_methods_keys(raw: dict[str, Any], name: str) -> dict[str, list[str]]:
    """Keys of the ``algorithm`` block that ``name`` does not take but another method does
    (key -> those methods): a scenario written for FedMPQ switched to FedAvg with
    ``--set algorithm.name=fedavg`` keeps ``lam``, ``epsilon``... which FedAvg ignores."""
    algo = raw.get("algorithm")
    if not isinstance(algo, dict):
        return {}
    shared = set(yaml_keys(AlgorithmConfig))
    own = set(yaml_keys(params_schema(name)))
    out: dict[str, list[str]] = {}
    for key in algo:
        if key in shared or key in own:
            continue
        users = [m for m, cls in ALGORITHM_PARAMS.items() if key in yaml_keys(cls)]
        if users:
            out[str(key)] = users
    return out


def validate_scenario_dict(raw: Any, *, file: str) -> Scenario:
    """Validate a scenario mapping (from a file or built in code); InputError naming ``file``."""
    return validate_scenario(raw, file=file)[0]


def validate_scenario(raw: Any, *, file: str) -> tuple[Scenario, tuple[str, ...]]:
    """Validate a scenario mapping, and the notes to show: keys of another method, which the
    chosen method ignores (so any shipped scenario switches methods with one ``--set``)."""
    require_mapping(raw, "scenario keys", file=file)
    scenario = validate_as(Scenario, raw, file=file, strict=True)
    ignored = other_methods_keys(raw, scenario.algorithm.name)
    notes: tuple[str, ...] = ()
    if ignored:
        raw = {**raw, "algorithm": {k: v for k, v in raw["algorithm"].items()
                                    if k not in ignored}}
        scenario = validate_as(Scenario, raw, file=file, strict=True)
        owners = sorted({m for users in ignored.values() for m in users})
        notes = (f"{file}: {', '.join(f'algorithm.{k}' for k in ignored)} "
                 f"{'is' if len(ignored) == 1 else 'are'} for {', '.join(owners)}, not "
                 f"{scenario.algorithm.name}: ignored",)
    _validate_named_options(scenario, file)
    return scenario, notes


def _validate_named_options(scenario: Scenario, file: str) -> None:
    # Nested schemas chosen by a name (model options, method parameters): validated here, not
    # inside Scenario, so their errors keep the full key path.
    validate_as(scenario.model.options_schema(), scenario.model.options, file=file, strict=True,
                key_prefix="model.options")
    validate_as(params_schema(scenario.algorithm.name), scenario.algorithm.model_extra or {},
                file=file, key_prefix="algorithm", also_allowed=yaml_keys(AlgorithmConfig),
                strict=True)
    if scenario.model.is_torchvision:
        from fedsim.models.tvzoo import validate_torchvision_options

        try:
            validate_torchvision_options(scenario.model.name, scenario.model.options)
        except InputError as exc:
            raise InputError(exc.detail, file=file, key=exc.key) from None


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> LoadedScenario:
    """Read, override and validate a scenario file against the schema only.

    Profiles are resolved by :func:`fedsim.runner.fleet.resolve_fleet` and dataset files checked
    by :func:`fedsim.data.check_dataset_available`; ``fedsim validate`` runs all three.
    """
    p = Path(path)
    raw = apply_overrides(read_yaml(p, mapping_of="scenario keys"), overrides)
    scenario, notes = validate_scenario(raw, file=str(p))
    return LoadedScenario(scenario=scenario, path=p, raw=raw, notes=notes)
