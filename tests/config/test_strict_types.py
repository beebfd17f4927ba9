"""Scenario keys are strictly typed: no string-to-number, yes/no-to-number or
number-to-string coercion, no NaN or infinity; a YAML list still fills a tuple and an
integer a float."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.config.loader import load_scenario
from fedsim.errors import InputError

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"


@pytest.mark.parametrize(("override", "key", "words"), [
    ("rounds='3'", "rounds", "got the text '3' (write the value without quotes)"),
    ("rounds=yes", "rounds", "expected a valid integer; got True"),
    ("rounds=3.0", "rounds", "expected a valid integer"),
    ("seed=1.5", "seed", "expected a valid integer"),
    ("algorithm.lr='0.1'", "algorithm.lr", "got the text '0.1'"),
    ("fleet.0.count=true", "fleet[0].count", "expected a valid integer"),
    ("selection.deadline_s=.nan", "selection.deadline_s", "expected a finite number"),
    ("selection.deadline_s=.inf", "selection.deadline_s", "expected a finite number"),
    ("name=2024", "name", "quote it in YAML: '2024'"),
    ("execution.threads='2'", "execution.threads", "got the text '2'"),
    ("model.options.hidden=['64']", "model.options.hidden[0]", "expected a valid integer"),
])
def test_coercions_are_refused_with_the_key(override: str, key: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        load_scenario(QUICKSTART, [override])
    assert err.value.key == key
    assert words in err.value.detail


@pytest.mark.parametrize("override", [
    "selection.deadline_s=10",  # an integer for a float
    "data.normalize={mean: [0.5], std: [0.25]}",  # YAML lists for tuples
    "algorithm.lr=1",
])
def test_what_strict_json_allows_still_loads(override: str) -> None:
    load_scenario(QUICKSTART, [override])
