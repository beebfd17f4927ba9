"""Load a scenario file, apply ``--set`` overrides, validate, and name every problem.

All failures become :class:`fedsim.errors.InputError` naming the file, the key path and
what was expected; the CLI turns those into exit status 2 without a traceback.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fedsim.algorithms.params import ALGORITHM_PARAMS
from fedsim.config.schema import Scenario
from fedsim.errors import InputError, format_key_path

MAX_ERRORS_SHOWN = 5


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


def read_yaml(path: Path) -> Any:
    """Safe-load one YAML file; every failure is an InputError naming the file."""
    try:
        if not path.exists():
            raise InputError("file not found", file=path)
        if not path.is_file():
            raise InputError("expected a YAML file, found a directory", file=path)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", file=str(path)[:200]) from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text file (expected UTF-8 YAML)", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None
    from fedsim.yamlsafe import YamlShapeError, safe_load

    try:
        return safe_load(text)
    except YamlShapeError as exc:
        raise InputError(f"invalid YAML: {exc}", file=path, key=exc.key) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML{where}: {problem}", file=path) from None


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


def _describe_error(err: Mapping[str, Any]) -> tuple[str, str]:
    loc = [p for p in err.get("loc", ()) if p not in ("function-after",)]
    # pydantic inserts the validator/model name for 'after' validators; drop non-field parts
    loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    key = format_key_path(loc)
    etype = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    given = err.get("input")
    if etype == "extra_forbidden":
        return key, "unknown key (check the spelling; see docs/scenarios.md for the keys)"
    if etype == "missing":
        return key, "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if given is not None and not isinstance(given, dict | list) and etype != "value_error":
        shown = repr(given)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg} (got {shown})"
    return key, msg


def validation_error_to_input_error(exc: ValidationError, file: str) -> InputError:
    """One message naming every failing key (up to a few), file first."""
    problems = []
    for err in exc.errors(include_url=False):
        key, msg = _describe_error(err)
        problems.append((key, msg))
    # nested model validation errors re-raised inside validators lose their prefix: fine.
    if len(problems) == 1:
        key, msg = problems[0]
        return InputError(msg, file=file, key=key or None)
    lines = [f"key '{k}': {m}" if k else m for k, m in problems[:MAX_ERRORS_SHOWN]]
    more = len(problems) - MAX_ERRORS_SHOWN
    if more > 0:
        lines.append(f"... and {more} more")
    return InputError(f"{len(problems)} problems:\n  " + "\n  ".join(lines), file=file)


def validate_scenario_dict(raw: Any, *, file: str) -> Scenario:
    if raw is None:
        raise InputError("the file is empty (expected a scenario mapping)", file=file)
    if not isinstance(raw, dict):
        raise InputError(
            f"expected a mapping of scenario keys at the top level, got {type(raw).__name__}",
            file=file,
        )
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file) from None
    # Nested schemas chosen by a name (model options, method parameters): validated here so
    # their errors keep the full key path.
    nested: list[tuple[str, type[BaseModel], Any]] = [
        ("model.options", scenario.model.options_schema(), scenario.model.options),
        ("algorithm", ALGORITHM_PARAMS[scenario.algorithm.name],
         scenario.algorithm.model_extra or {}),
    ]
    for prefix, schema, value in nested:
        try:
            schema.model_validate(value)
        except ValidationError as exc:
            err = validation_error_to_input_error(exc, file)
            if err.key:
                err = InputError(err.detail, file=file, key=f"{prefix}.{err.key}")
            raise err from None
    if scenario.model.is_torchvision:
        from fedsim.models.tvzoo import validate_torchvision_options

        try:
            validate_torchvision_options(scenario.model.name, scenario.model.options)
        except InputError as exc:
            raise InputError(exc.detail, file=file, key=exc.key) from None
    return scenario


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> LoadedScenario:
    """Read, override and validate a scenario file (schema only; see :func:`check_scenario`)."""
    p = Path(path)
    raw = read_yaml(p)
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    scenario = validate_scenario_dict(raw, file=str(p))
    return LoadedScenario(scenario=scenario, path=p, raw=raw)
