"""Scenario loading: overrides, schema errors with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.config.loader import apply_overrides, load_scenario
from fedsim.errors import InputError

BASE = """
name: t
seed: 3
rounds: 2
fleet:
  - {profile: raspberry_pi_4, count: 2, budget_bits: 4}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_loads_and_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, BASE)
    ls = load_scenario(p, ["rounds=5", "data.partition.alpha=0.1", "fleet.0.count=7"])
    assert ls.scenario.rounds == 5
    assert ls.scenario.data.partition.alpha == 0.1
    assert ls.scenario.fleet[0].count == 7 and ls.scenario.n_clients == 7


@pytest.mark.parametrize(
    ("text", "override", "key", "needle"),
    [
        (BASE + "bogus: 1\n", None, "bogus", "unknown key"),
        (BASE, "rounds=-1", "rounds", "greater than or equal to 1"),
        (BASE, "rounds=abc", "rounds", "integer"),
        (BASE, "data.partition.alpha=0", "data.partition.alpha", "greater than 0"),
        (BASE, "fleet.0.count=0", "fleet[0].count", "greater than or equal"),
        (BASE, "data.dataset=imagenet", "data.dataset", "unknown dataset"),
        (BASE, "model.name=vgg", "model.name", "unknown model"),
        (BASE, "algorithm.name=magic", "algorithm.name", "unknown algorithm"),
        (BASE, "model.options.channels=[0]", "model.options.channels[0]", "greater than"),
        (BASE, "algorithm.aggregation=median", "algorithm.aggregation", "samples"),
        (BASE, "algorithm.nonsense=1", "algorithm.nonsense", "unknown key"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, override: str | None, key: str,
                                  needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(InputError) as ei:
        load_scenario(p, [override] if override else [])
    msg = str(ei.value)
    assert str(p) in msg and f"key '{key}'" in msg and needle in msg


def test_yaml_syntax_and_empty_and_tags(tmp_path: Path) -> None:
    for text, needle in [
        ("a: [1, 2\n", "invalid YAML"),
        ("", "empty"),
        ("- 1\n- 2\n", "mapping"),
        ("x: !!python/object:os.system {}\n", "invalid YAML"),
    ]:
        p = write(tmp_path, text)
        with pytest.raises(InputError, match=needle):
            load_scenario(p)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="file not found"):
        load_scenario("/nonexistent/x.yaml")


def test_override_parsing_errors() -> None:
    with pytest.raises(InputError, match="KEY=VALUE"):
        apply_overrides({}, ["rounds"])
    with pytest.raises(InputError, match="out of range"):
        apply_overrides({"fleet": [{}]}, ["fleet.3.count=1"])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
