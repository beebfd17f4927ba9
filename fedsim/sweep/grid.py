"""The sweep's grid: ``--grid KEY=v1,v2`` options crossed into cells, checked up front."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedsim.errors import InputError


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its overrides (``KEY=VALUE`` strings) and a short label."""

    index: int
    values: tuple[tuple[str, Any], ...]

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={_text(v)}" for k, v in self.values]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.values)

    @property
    def name(self) -> str:
        return f"c{self.index:02d}"


def _text(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip() \
        if not isinstance(v, str) else v


def parse_grid(texts: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``KEY=v1,v2,...`` -> (key, values); each value read as YAML (``2``, ``0.1``, ``auto``)."""
    axes: list[tuple[str, list[Any]]] = []
    for text in texts:
        key, sep, rest = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--grid expects KEY=V1,V2,...; got '{text}'", key="--grid")
        if any(k == key for k, _ in axes):
            raise InputError(f"--grid names {key} twice", key="--grid")
        if key in ("seed", "seeds"):
            raise InputError("seeds are not a grid axis: give them with --seeds 1-3 (each cell "
                             "runs every seed)", key="--grid")
        axes.append((key, _values(key, rest, text)))
    if not axes:
        raise InputError("a sweep needs at least one --grid KEY=V1,V2,...", key="--grid")
    return axes


def _values(key: str, rest: str, text: str) -> list[Any]:
    """``V1,V2,...`` as YAML flow items, so a value may itself be a list or a mapping
    (``[8,16],[16,32]`` or ``{auto: true, adapt: battery},4``)."""
    try:
        values = yaml.safe_load(f"[{rest}]") if rest.strip() else []
    except yaml.YAMLError:
        values = None
    if values is None or not isinstance(values, list) or any(v is None for v in values) \
            or not values:
        parts = [p.strip() for p in rest.split(",")]
        if not rest.strip() or any(not p for p in parts):
            raise InputError(f"--grid {key}: empty value in '{text}' (expected V1,V2,...)",
                             key="--grid")
        values = parts
    return values


def cells_of(axes: Sequence[tuple[str, list[Any]]]) -> list[Cell]:
    """The cross product, in the order the axes and values were given."""
    keys = [k for k, _ in axes]
    return [Cell(i, tuple(zip(keys, combo, strict=True)))
            for i, combo in enumerate(itertools.product(*(v for _, v in axes)))]


def check_cells(scenario: Path, base: Sequence[str], cells: Sequence[Cell],
                seeds: Sequence[int]) -> None:
    """Validate every cell (schema, profiles, dataset, budgets' keys) before anything runs:
    a typo in the last cell must not be found an hour into the sweep."""
    from fedsim.config.loader import load_scenario
    from fedsim.runner.fleet import resolve_fleet

    for cell in cells:
        try:
            loaded = load_scenario(scenario, [*base, *cell.overrides, f"seed={seeds[0]}",
                                              "seeds=null"])
            resolve_fleet(loaded)
        except InputError as exc:
            where = f"grid cell {cell.index} ({cell.label})"
            raise InputError(f"{where}: {exc.detail}", file=exc.file, key=exc.key) from None
