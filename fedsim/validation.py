"""The one renderer of pydantic ValidationErrors into an :class:`~fedsim.errors.InputError`.

Why one: scenarios, hardware profiles, model options and dataset options are all validated by
pydantic schemas, and a user should read the same words for the same mistake in any of them.
An error names the key path of the first problem as written in the file (pydantic's union tags
and validator names dropped), then what was wrong:

* an unknown key: a close match ("did you mean") and the keys allowed there;
* a missing key: that it is required;
* a wrong value: what was expected and what was given;
* a validator's own message as it is; a validator that checks a key below its own (a
  profile's ``sources[0].fields[0]``) starts its message with that relative key path and
  ``": "``, and the error is reported at that key;

and lists the other problems after it. An unknown key is reported first: it is usually the
reason a required key beside it is "missing". Loader-specific wording (a renamed key, a
friendlier message for one field) comes in through a small ``hint`` hook, not a second
renderer.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Tag, ValidationError

from fedsim.errors import InputError, format_key_path

#: Problems listed after the first one (the rest are counted).
MAX_LISTED = 4

#: ``hint(loc, error)``: a loader's own wording for one error (``loc`` as written in the
#: file, relative to the schema), or None for the standard wording.
Hint = Callable[[list[str | int], Mapping[str, Any]], str | None]

M = TypeVar("M", bound=BaseModel)

_MAPPING_TYPES = ("model_type", "model_attributes_type", "dict_type")
_NO_GOT = ("value_error", "assertion_error", "missing", "too_short", "too_long")
_RELATIVE_KEY = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)+): (.+)$", re.S)


def suggest(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key_message(word: str, allowed: Sequence[str]) -> str:
    """The wording of an unknown key, with a close match and the keys allowed there."""
    if not allowed:
        return "unknown key"
    return f"unknown key{suggest(word, allowed)}; expected one of: {', '.join(allowed)}"


def yaml_keys(cls: type[BaseModel]) -> list[str]:
    """The keys a mapping for ``cls`` may hold, as written in files (aliases first)."""
    return [info.alias or name for name, info in cls.model_fields.items()]


# ------------------------------------------------------------------------ key paths


def _unwrap(ann: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` (pydantic adds no location part for either)."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(members) == 1:
                ann = members[0]
                continue
        return ann


def _union_members(ann: Any) -> dict[str, Any]:
    """A union's members by the name pydantic puts in an error location (the ``Tag`` of a
    discriminated union, else the member's class name)."""
    out: dict[str, Any] = {}
    for arg in typing.get_args(ann):
        if arg is type(None):
            continue
        tag = next((m.tag for m in getattr(arg, "__metadata__", ()) if isinstance(m, Tag)), None)
        inner = _unwrap(arg)
        name = tag or getattr(inner, "__name__", None)
        if name:
            out[name] = inner
    return out


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _below(ann: Any, part: str | int) -> Any:
    """The annotation of ``ann``'s child ``part`` (None where unknown: Any, extra keys)."""
    if _is_model(ann):
        for name, info in ann.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (list, set, frozenset, Sequence) and args:
        return args[0]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[part] if isinstance(part, int) and part < len(args) else None
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _clean_loc(schema: type[BaseModel], loc: Sequence[str | int]
               ) -> tuple[list[str | int], type[BaseModel] | None]:
    """pydantic's location as a key path of the file, and the model holding its last key."""
    ann: Any = schema
    out: list[str | int] = []
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        ann = _unwrap(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            members = _union_members(ann)
            if part in members:  # a union tag: which member, not a key of the file
                ann = members[part]
                continue
        parent = ann if _is_model(ann) else None
        out.append(part)
        ann = _below(ann, part)
    return out, parent


# -------------------------------------------------------------------------- wording


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(err: Mapping[str, Any], loc: list[str | int], parent: type[BaseModel] | None,
              also_allowed: Sequence[str]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        allowed = [*(yaml_keys(parent) if parent is not None else []), *also_allowed]
        return unknown_key_message(str(loc[-1]) if loc else "", allowed)
    if kind == "missing":
        return "missing required key"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in _MAPPING_TYPES:
        return f"expected a mapping; got {_shown(err.get('input'))}"
    if msg.startswith("Input should be "):
        want = msg.removeprefix("Input should be ")
        msg = "expected " + ("a value " if want.startswith(("greater", "less")) else "") + want
    got = err.get("input")
    if kind == "string_type" and isinstance(got, int | float):  # YAML read `2024` as a number
        return f"{msg}; got the number {_shown(got)} (quote it in YAML: '{got}')"
    if kind in ("int_type", "float_type", "bool_type") and isinstance(got, str):
        return f"{msg}; got the text {_shown(got)} (write the value without quotes)"
    return msg if kind in _NO_GOT else f"{msg}; got {_shown(got)}"


def _join(prefix: str, key: str) -> str:
    if not prefix or not key:
        return prefix or key
    return prefix + key if key.startswith("[") else f"{prefix}.{key}"


def validation_to_input_error(
    exc: ValidationError,
    schema: type[BaseModel],
    *,
    file: str | Path | None = None,
    key_prefix: str = "",
    hint: Hint | None = None,
    also_allowed: Sequence[str] = (),
) -> InputError:
    """One InputError for ``exc`` (raised validating ``schema``): the first problem's key and
    wording, the others listed after it.

    ``key_prefix`` is where the validated value sits in ``file`` (``model.options``);
    ``also_allowed`` names keys accepted at the top level by another schema (the algorithm's
    shared keys beside a method's own), so an unknown-key message lists them too.
    """
    items: list[tuple[str, str]] = []
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        loc, parent = _clean_loc(schema, err["loc"])
        text = (hint(loc, err) if hint is not None else None) or _describe(
            err, loc, parent, also_allowed if len(loc) == 1 else ())
        key = format_key_path(loc)
        m = _RELATIVE_KEY.match(text) if err["type"] == "value_error" else None
        if m:
            key, text = _join(key, m.group(1)), m.group(2)
        item = (_join(key_prefix, key), text)
        if item not in items:
            items.append(item)
    key, text = items[0]
    rest = [f"key '{k}': {t}" if k else t for k, t in items[1:]]
    if rest:
        shown = rest[:MAX_LISTED] + ([f"... and {len(rest) - MAX_LISTED} more"]
                                     if len(rest) > MAX_LISTED else [])
        text += f"\n  {len(rest)} more problem(s):\n    " + "\n    ".join(shown)
    return InputError(text, file=file, key=key or None)


def validate_as(
    schema: type[M],
    data: Any,
    *,
    file: str | Path | None = None,
    key_prefix: str = "",
    hint: Hint | None = None,
    also_allowed: Sequence[str] = (),
    strict: bool = False,
) -> M:
    """``schema.model_validate(data)``, a ValidationError rendered by
    :func:`validation_to_input_error` (same keyword arguments).

    ``strict`` validates the data as JSON in pydantic's strict mode: no string-to-number,
    yes/no-to-bool or number-to-string coercion, while a YAML list still fills a tuple and an
    integer a float (what strict JSON allows). Values JSON cannot hold (a YAML date) are
    passed as their text."""
    try:
        if strict:
            import json

            try:
                text = json.dumps(data, default=str, allow_nan=True)
            except (TypeError, ValueError):  # keys JSON cannot hold: let pydantic say so
                return schema.model_validate(data, strict=True)
            return schema.model_validate_json(text, strict=True)
        return schema.model_validate(data)
    except ValidationError as exc:
        raise validation_to_input_error(exc, schema, file=file, key_prefix=key_prefix,
                                        hint=hint, also_allowed=also_allowed) from None
