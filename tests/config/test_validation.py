"""The one pydantic-error renderer (fedsim.validation) and the option checks that now come
from the scenario schemas only (model options, dataset options, one list of names each)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from fedsim.config.loader import load_scenario
from fedsim.config.schema import (
    DATASET_NAMES,
    MODEL_NAMES,
    MODEL_OPTIONS,
    DataConfig,
    DatasetOptions,
)
from fedsim.errors import InputError
from fedsim.validation import validate_as

BASE = "name: t\nrounds: 2\nfleet:\n  - {profile: raspberry_pi_4, count: 2}\n"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Leaf(_Strict):
    size: Annotated[int, Field(ge=1)]
    kind: Literal["a", "b"] = "a"


def _tag(v: object) -> str:
    return "name" if isinstance(v, str) else "inline"


class Root(_Strict):
    leaf: Leaf
    items: list[Leaf] = []
    ref: Annotated[
        Annotated[Leaf, Tag("inline")] | Annotated[str, Tag("name")], Discriminator(_tag)
    ] = "x"
    cls: str = Field("c", alias="class")

    @model_validator(mode="after")
    def _relative(self) -> Root:
        if self.leaf.size == 7:
            raise ValueError("items[0].size: seven is reported below, at items[0].size")
        return self


def _error(data: object, **kw: typing.Any) -> InputError:
    with pytest.raises(InputError) as info:
        validate_as(Root, data, file="f.yaml", **kw)
    assert info.value.file == "f.yaml"
    return info.value


def test_unknown_key_first_with_suggestion_and_allowed_keys() -> None:
    err = _error({"leaf": {"sise": 3}})  # also makes leaf.size "missing": reported second
    assert err.key == "leaf.sise"
    assert err.detail.startswith("unknown key (did you mean 'size'?); expected one of: "
                                 "size, kind")
    assert "1 more problem(s):\n    key 'leaf.size': missing required key" in err.detail


def test_expected_vs_got_and_prefix() -> None:
    err = _error({"leaf": {"size": 0}}, key_prefix="fleet[0].override")
    assert err.key == "fleet[0].override.leaf.size"
    assert err.detail == "expected a value greater than or equal to 1; got 0"
    err = _error({"leaf": {"size": 1}, "items": [{"size": 1, "kind": "c"}]})
    assert err.key == "items[0].kind" and err.detail == "expected 'a' or 'b'; got 'c'"
    assert _error({"leaf": [1]}).detail == "expected a mapping; got a list"


def test_union_tags_are_not_keys() -> None:
    err = _error({"leaf": {"size": 1}, "ref": {"size": -1}})
    assert err.key == "ref.size"
    err = _error({"leaf": {"size": 1}, "ref": 5})
    assert err.key == "ref" and "got 5" in err.detail


def test_hint_hook_and_aliases_and_relative_keys() -> None:
    err = _error({"leaf": {"size": 1}, "clas": "x"},
                 hint=lambda loc, e: "renamed" if loc == ["clas"] else None)
    assert err.key == "clas" and err.detail == "renamed"
    err = _error({"leaf": {"size": 1}, "clas": "x"})
    assert "did you mean 'class'" in err.detail  # the key as written in files
    err = _error({"leaf": {"size": 7}})
    assert err.key == "items[0].size" and err.detail.startswith("seven is reported below")


def test_also_allowed_keys_are_listed() -> None:
    with pytest.raises(InputError) as info:
        validate_as(Leaf, {"size": 1, "lrr": 1}, key_prefix="algorithm", also_allowed=["lr"])
    assert info.value.key == "algorithm.lrr"
    assert "did you mean 'lr'" in info.value.detail and "size, kind, lr" in info.value.detail


def test_many_problems_are_counted() -> None:
    err = _error({"leaf": {"size": 0}, "items": [{"size": 0}] * 6})
    assert err.key == "leaf.size"
    assert "6 more problem(s)" in err.detail and "... and 2 more" in err.detail


# ------------------------------------------------------------- option checks, one owner


def test_one_list_of_model_and_dataset_names() -> None:
    import fedsim.data
    import fedsim.models
    from fedsim.models.resnet import RESNET_DEPTHS

    assert fedsim.models.MODEL_NAMES is MODEL_NAMES and tuple(MODEL_OPTIONS) == MODEL_NAMES
    assert set(RESNET_DEPTHS) <= set(MODEL_NAMES)
    assert fedsim.data.DATASET_NAMES is DATASET_NAMES


def test_dataset_options_are_the_scenario_fields() -> None:
    """DatasetOptions (what the loaders take) and DataConfig declare the same fields."""
    for name, info in DatasetOptions.model_fields.items():
        other = DataConfig.model_fields[name]
        assert (info.annotation, info.metadata, info.default) == (
            other.annotation, other.metadata, other.default)


@pytest.mark.parametrize(("synthetic", "key", "needle"), [
    ({"channels": 0}, "data.synthetic.channels", "greater than or equal to 1"),
    ({"channels": "3"}, "data.synthetic.channels", "integer"),
    ({"chanels": 3}, "data.synthetic.chanels", "did you mean 'channels'"),
    ({"image_size": 2}, "data.synthetic.image_size", "greater than or equal to 4"),
])
def test_synthetic_options_name_data_synthetic(tmp_path: Path, synthetic: dict, key: str,
                                               needle: str) -> None:
    """A scenario and a direct call report the same key and words (a direct call also
    takes ``noise``, so its list of allowed keys is one longer)."""
    from fedsim.data import dataset_info

    p = tmp_path / "s.yaml"
    p.write_text(BASE + f"data: {{dataset: synthetic, synthetic: {synthetic}}}\n")
    with pytest.raises(InputError) as scen:
        load_scenario(p)
    with pytest.raises(InputError) as call:
        dataset_info("synthetic", synthetic)
    assert scen.value.file == str(p)
    assert scen.value.key == call.value.key == key
    assert needle in scen.value.detail and needle in call.value.detail
    assert scen.value.detail.split(";")[0] == call.value.detail.split(";")[0]


def test_dataset_common_options_and_normalize_channels() -> None:
    from fedsim.data import dataset_info, load_dataset

    with pytest.raises(InputError) as info:
        load_dataset("digits", options={"train_subset": 0})
    assert info.value.key == "data.train_subset"
    with pytest.raises(InputError) as info:
        dataset_info("cifar10", {"normalize": {"mean": [0.5], "std": [0.2]}})
    assert info.value.key == "data.normalize.mean" and "3 channel(s)" in info.value.detail
    with pytest.raises(InputError) as info:
        dataset_info("synthetic", {"channels": 2, "normalize": {"mean": [0.5], "std": [0.2]}})
    assert info.value.key == "data.normalize.mean" and "2 channel(s)" in info.value.detail
    with pytest.raises(InputError) as info:
        dataset_info("mnist")
    assert info.value.key == "data.dataset"


@pytest.mark.parametrize(("options", "key"), [
    ({"channels": [8, 0]}, "model.options.channels[1]"),
    ({"hiden": [3]}, "model.options.hiden"),
    ({"batchnorm": "yes"}, "model.options.batchnorm"),
])
def test_model_options_same_from_scenario_and_call(tmp_path: Path, options: dict,
                                                   key: str) -> None:
    from fedsim.models import validate_model_options

    p = tmp_path / "s.yaml"
    p.write_text(BASE + f"model: {{name: cnn, options: {options}}}\n")
    with pytest.raises(InputError) as scen:
        load_scenario(p)
    with pytest.raises(InputError) as call:
        validate_model_options("cnn", options)
    assert scen.value.key == call.value.key == key
    assert scen.value.detail == call.value.detail


def test_resnet_shortcut_any_case_is_normalised(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(BASE + "model: {name: resnet20, options: {shortcut: b}}\n")
    assert load_scenario(p).scenario.model.resolved_options() == {"shortcut": "B"}
