"""Bad-input fuzzing: malformed scenarios and hardware profiles through the CLI.

Every generated input is *certainly* invalid (each mutation is chosen so that no value it
can produce is accepted), so the expectations are exact: exit status 2, a message naming
the file (and the key, where the problem is a key), no traceback, and no results folder
left behind by ``fedsim run``. Runs through click's CliRunner in-process; ``run`` fails
before torch is imported, so each example costs milliseconds.

Deterministic by default (``derandomize=True``, no example database) so the suite stays
green and reproducible; set ``FEDSIM_FUZZ_RANDOM=1`` to explore with fresh random examples
(and ``FEDSIM_FUZZ_EXAMPLES=N`` for more of them).

Bugs found while writing this file are pinned as ``xfail(strict=True)`` tests at the end.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.cli import main
from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "hardware_profiles"
ENV_PROFILES_DIR = "FEDSIM_HARDWARE_PROFILES"

RANDOM = bool(os.environ.get("FEDSIM_FUZZ_RANDOM"))
EXAMPLES = int(os.environ.get("FEDSIM_FUZZ_EXAMPLES", "110"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", autouse=True)
def small_builtin_profiles(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Only the shipped profiles TINY needs as the built-in library (5x faster loads).

    Same code path ($FEDSIM_HARDWARE_PROFILES is the documented first place looked).
    """
    root = tmp_path_factory.mktemp("builtin_profiles")
    for name in ("raspberry_pi_4", "midrange_phone"):
        shutil.copy(SHIPPED / f"{name}.yaml", root)
    (root / "links").mkdir()
    for name in ("wifi", "lte"):
        shutil.copy(SHIPPED / "links" / f"{name}.yaml", root / "links")
    old = os.environ.get(ENV_PROFILES_DIR)
    os.environ[ENV_PROFILES_DIR] = str(root)
    yield root
    if old is None:
        os.environ.pop(ENV_PROFILES_DIR, None)
    else:
        os.environ[ENV_PROFILES_DIR] = old


# ------------------------------------------------------------------------------ running


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    res = CliRunner().invoke(main, list(args))
    out = res.output + (res.stderr if res.stderr_bytes is not None else "")
    crash = res.exception if not isinstance(res.exception, SystemExit) else None
    return res.exit_code, out, crash


def assert_rejected(args: list[str], *, file: Path, key: str | None, needle: str | None,
                    what: str) -> None:
    code, out, crash = invoke(*args)
    context = f"\n--- {' '.join(args[:1])} on {what}\n--- output:\n{out}"
    assert crash is None, f"crashed with {crash!r}{context}"
    assert code == 2, f"exit {code}, expected 2{context}"
    assert "Traceback" not in out, context
    assert str(file) in out, f"message does not name {file}{context}"
    if key is not None:
        assert f"'{key}" in out, f"message does not name key {key!r}{context}"
    if needle is not None:
        assert needle in out, f"message lacks {needle!r}{context}"


def assert_no_results(out_dir: Path) -> None:
    assert not out_dir.exists() or not any(out_dir.iterdir()), (
        f"run left {sorted(p.name for p in out_dir.iterdir())} in {out_dir}")


@dataclass(frozen=True)
class Case:
    """One malformed file: its content, the key the message must name, a phrase to find."""

    family: str
    content: str | bytes
    key: str | None = None
    needle: str | None = None

    def write(self, path: Path) -> None:
        if isinstance(self.content, bytes):
            path.write_bytes(self.content)
        else:
            path.write_text(self.content, encoding="utf-8")


# ------------------------------------------------------------------------------ helpers

Path_ = tuple[str | int, ...]


def key_of(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out


def set_in(data: Any, path: Path_, value: Any) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, list):
            node = node[part]  # type: ignore[index]
            continue
        if part not in node or node[part] is None:
            node[part] = [None] * (nxt + 1) if isinstance(nxt, int) else {}
        node = node[part]
    node[path[-1]] = value


def del_in(data: Any, path: Path_) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


def dump(data: Any) -> str:
    # no line folding: every line stays a complete line, so inserted fragments stay fragments
    return yaml.safe_dump(data, sort_keys=False, width=10**9, allow_unicode=False)


#: junk that is never a known key or value: printable, any script, no control characters
junk = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
junk_key = junk.map(lambda s: "zz" + s)
junk_key_nodot = junk.map(lambda s: "zz" + s.replace(".", ""))
junk_word = junk.map(lambda s: "zz" + s)
huge_int = st.integers(20, 400).map(lambda k: 10**k)
float_overflow = st.integers(309, 400).map(lambda k: 10**k)  # no float can hold it


def floats_outside(lo: float | None, lo_incl: bool, hi: float | None,
                   hi_incl: bool) -> st.SearchStrategy[float]:
    """Floats (inf and NaN included) outside [lo, hi] with the given inclusiveness."""
    parts: list[st.SearchStrategy[float]] = [st.just(float("nan"))]
    if lo is not None:  # (-0.0 >= 0 holds: filter with the validator's own comparison)
        parts.append(st.floats(max_value=lo, allow_nan=False).filter(
            lambda x: x < lo if lo_incl else x <= lo))
    if hi is not None:
        parts.append(st.floats(min_value=hi, allow_nan=False).filter(
            lambda x: x > hi if hi_incl else x >= hi))
    return st.one_of(parts)


def ints_outside(lo: int, hi: int | None) -> st.SearchStrategy[Any]:
    parts: list[st.SearchStrategy[Any]] = [
        st.integers(max_value=lo - 1),
        huge_int.map(lambda n: -n),
        st.floats(lo, lo + 1000, allow_nan=False).filter(lambda x: x != int(x)),  # fractional
        st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    ]
    if hi is not None:
        parts += [st.integers(min_value=hi + 1), huge_int.filter(lambda n: n > hi)]
    return st.one_of(parts)


wrong_type = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(junk_key, st.integers(), max_size=2),
)
not_a_number = st.one_of(junk_word, wrong_type)
not_a_string = st.one_of(st.integers(), st.floats(allow_nan=False), wrong_type)


def deep(depth: int, as_dict: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


# (well below any sane nesting limit, so the error is about the key, not the depth)
deep_value = st.builds(deep, st.integers(2, 150), st.booleans())

#: fragments that break YAML wherever they start a line, given a base text without any of
#: [ ] { } " characters and without multi-line scalars
SYNTAX_BREAKERS = ["zz: a: b", "zz: [1, 2", "zz: {a: 1", 'zz: "abc', "\tzz: 1", "zz: ]",
                   "zz: }", "{", "zz: 'a' b", "? zz: a: b", "zz: *nope"]

#: tags the safe loader cannot construct (never valid anywhere)
UNSAFE_TAGS = [
    "!!python/object:os.system {}",
    "!!python/object/apply:os.system ['true']",
    "!!python/object/new:os.system ['true']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!zz 1",
    "!<tag:zz.example,2000:x> 1",
]
#: plain-YAML-only profiles also refuse these (the scenario loader may accept them)
NON_PLAIN_TAGS = [*UNSAFE_TAGS, "!!binary aGVsbG8=", "!!set {a: null}", "!!omap [a: 1]",
                  "!!pairs [a: 1]"]

SENTINEL = "ZZSENTINELZZ"


def with_fragment(base: str) -> st.SearchStrategy[str]:
    """``base`` with a breaking line inserted at column 0 between two of its lines.

    Column 0 matters: an indented line after ``key: value`` continues the plain scalar
    (``name: tiny`` + ``  {`` is the valid name ``tiny {``).
    """
    lines = base.splitlines()
    return st.builds(
        lambda i, frag: "\n".join([*lines[:i], frag, *lines[i:]]) + "\n",
        st.integers(0, len(lines)), st.sampled_from(SYNTAX_BREAKERS),
    )


empty_texts = st.sampled_from(["", "   \n", "\n\n", "# only a comment\n", "---\n", "~\n",
                               "null\n", "---\n...\n"])
non_mapping_tops = st.one_of(
    st.lists(st.integers(), min_size=1, max_size=3), st.integers(), junk_word,
    st.floats(allow_nan=False), st.booleans(),
).map(dump)
#: bytes that are never UTF-8 (0xFF cannot occur in UTF-8)
binary_junk = st.builds(lambda a, b: a + b"\xff" + b, st.binary(max_size=40),
                        st.binary(max_size=40))


# ------------------------------------------------------------------------------ scenarios

SCEN_INT: dict[Path_, tuple[int, int | None]] = {
    ("rounds",): (1, 10**6),
    ("seed",): (0, 2**63 - 1),
    ("fleet", 0, "count"): (1, 10**6),
    ("fleet", 1, "count"): (1, 10**6),
    ("algorithm", "local_epochs"): (1, 10_000),
    ("algorithm", "batch_size"): (1, 100_000),
    ("algorithm", "lr_milestones", 0): (1, None),
    ("data", "synthetic", "train_size"): (10, 10**7),
    ("data", "synthetic", "test_size"): (10, 10**7),
    ("data", "synthetic", "num_classes"): (2, 1000),
    ("data", "synthetic", "channels"): (1, 16),
    ("data", "synthetic", "image_size"): (4, 256),
    ("data", "partition", "shards_per_client"): (1, 10_000),
    ("data", "train_subset"): (1, None),
    ("data", "test_subset"): (1, None),
    ("model", "options", "channels", 0): (1, 4096),
    ("model", "options", "hidden", 0): (1, 65536),
    ("selection", "per_round"): (1, None),
    ("execution", "workers"): (1, 256),
    ("execution", "threads"): (1, 256),
    ("execution", "eval_batch_size"): (1, 10**6),
    ("fedbuff", "buffer_k"): (1, 100_000),
    ("fedbuff", "concurrency"): (1, 10**6),
    ("system_only", "samples_per_client"): (1, 10**7),
}
# (lo, lo inclusive, hi, hi inclusive)
SCEN_FLOAT: dict[Path_, tuple[float | None, bool, float | None, bool]] = {
    ("algorithm", "lr"): (0, False, 100, True),
    ("algorithm", "momentum"): (0, True, 1, False),
    ("algorithm", "weight_decay"): (0, True, 1, True),
    ("algorithm", "lr_gamma"): (0, False, 1, True),
    ("data", "partition", "alpha"): (0, False, 1e6, True),
    ("data", "partition", "min_share"): (0, True, 1, False),
    ("fleet", 0, "budget_bits"): (1, True, 32, True),
    ("fleet", 1, "budget_bits"): (1, True, 32, True),
    ("selection", "fraction"): (0, False, 1, True),
    ("selection", "deadline_s"): (0, False, None, False),  # +inf is a valid deadline
    ("selection", "over_commit"): (0, True, 10, True),
    ("selection", "wait_s"): (0, False, None, False),
    ("selection", "max_wait_s"): (0, False, None, False),
    ("fleet", 0, "failure_prob"): (0, True, 1, True),
    ("fleet", 1, "battery", "initial"): (0, True, 1, True),
    ("fleet", 1, "battery", "floor"): (0, True, 1, False),
    ("availability", "online_fraction"): (0, False, 1, True),
    ("fedbuff", "server_lr"): (0, False, 100, True),
}
SCEN_CHOICE: list[Path_] = [
    ("data", "dataset"), ("model", "name"), ("algorithm", "name"),
    ("data", "partition", "kind"), ("execution", "executor"), ("execution", "device"),
    ("fleet", 0, "profile"), ("fleet", 1, "link"), ("mode",), ("selection", "policy"),
    ("availability", "model"), ("fedbuff", "staleness"), ("system_only", "bits"),
]
SCEN_STR: list[Path_] = [("name",), ("description",), ("fleet", 0, "profile"),
                         ("data", "dataset"), ("algorithm", "name"), ("model", "name")]
SCEN_MAPPINGS: list[Path_] = [
    (), ("data",), ("data", "partition"), ("data", "synthetic"), ("model",),
    ("model", "options"), ("algorithm",), ("fleet", 0), ("fleet", 1), ("selection",),
    ("execution",), ("fedbuff",), ("system_only",), ("availability",),
    ("fleet", 1, "battery"),
]
SCEN_SCALARS: list[Path_] = [*SCEN_INT, *SCEN_FLOAT, *SCEN_CHOICE]


def _scenario(path: Path_, value: Any) -> str:
    data = copy.deepcopy(TINY)
    set_in(data, path, value)
    return dump(data)


def _scen_tagged(path: Path_, tag: str) -> str:
    return _scenario(path, SENTINEL).replace(SENTINEL, tag)


def scenario_cases() -> st.SearchStrategy[Case]:
    base = dump(TINY)
    assert not any(c in base for c in '[]{}"'), "base text must not hold flow/quote chars"
    int_fields = st.sampled_from(sorted(SCEN_INT, key=key_of))
    float_fields = st.sampled_from(sorted(SCEN_FLOAT, key=key_of))

    def out_of_range_int(path: Path_) -> st.SearchStrategy[Case]:
        lo, hi = SCEN_INT[path]
        return ints_outside(lo, hi).map(
            lambda v: Case("int out of range", _scenario(path, v), key_of(path)))

    def out_of_range_float(path: Path_) -> st.SearchStrategy[Case]:
        return floats_outside(*SCEN_FLOAT[path]).map(
            lambda v: Case("float out of range / nan / inf", _scenario(path, v), key_of(path)))

    def wrong(paths: list[Path_], values: st.SearchStrategy[Any],
              family: str) -> st.SearchStrategy[Case]:
        return st.tuples(st.sampled_from(paths), values).map(
            lambda pv: Case(family, _scenario(pv[0], pv[1]), key_of(pv[0])))

    def unknown_key(container: Path_, key: str, value: Any) -> Case:
        data = copy.deepcopy(TINY)
        node: Any = data
        for part in container:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[key] = value
        return Case("unknown key", dump(data), key_of((*container, key)),
                    "unknown key")

    def override_key(key: str, value: Any) -> Case:
        data = copy.deepcopy(TINY)
        data["fleet"][0]["override"] = {key: value}
        return Case("unknown override key", dump(data),
                    key_of(("fleet", 0, "override", key)), "unknown key")

    return st.one_of(
        with_fragment(base).map(lambda t: Case("syntax error", t, None, "invalid YAML")),
        empty_texts.map(lambda t: Case("empty file", t, None, "empty")),
        non_mapping_tops.map(lambda t: Case("top level not a mapping", t, None,
                                            "expected a mapping")),
        binary_junk.map(lambda b: Case("binary junk", b, None, "not a text file")),
        int_fields.flatmap(out_of_range_int),
        float_fields.flatmap(out_of_range_float),
        wrong(sorted(SCEN_INT, key=key_of) + sorted(SCEN_FLOAT, key=key_of), not_a_number,
              "number field, wrong type"),
        wrong(SCEN_CHOICE, junk_word, "unknown choice / unicode junk"),
        wrong(SCEN_STR, not_a_string, "string field, wrong type"),
        wrong([("name",)], junk.map(lambda s: "zz/" + s), "unsafe run name"),
        wrong(SCEN_SCALARS, deep_value, "deep nesting"),
        st.builds(unknown_key, st.sampled_from(SCEN_MAPPINGS), junk_key,
                  st.one_of(st.integers(), junk)),
        st.builds(override_key, junk_key_nodot, st.one_of(st.integers(), junk)),
        st.builds(lambda p, t: Case("unsafe YAML tag", _scen_tagged(p, t), None,
                                    "invalid YAML"),
                  st.sampled_from(SCEN_SCALARS), st.sampled_from(UNSAFE_TAGS)),
    )


@FUZZ
@given(case=scenario_cases())
def test_fuzz_bad_scenarios(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        case.write(path)
        out_dir = Path(tmp) / "out"
        what = f"{case.family}: {case.content[:300]!r}"
        for args in (["validate", str(path)], ["run", str(path), "-o", str(out_dir)]):
            assert_rejected(args, file=path, key=case.key, needle=case.needle, what=what)
        assert_no_results(out_dir)


# ------------------------------------------------------------------------------ profiles

PROFILE_NAME = "fuzz_pi"


def base_profile() -> dict[str, Any]:
    data = yaml.safe_load((SHIPPED / "raspberry_pi_4.yaml").read_text(encoding="utf-8"))
    data["name"] = PROFILE_NAME
    return data


# (lo, lo inclusive, hi, hi inclusive); numbers are strict: any string is wrong
PROF_FLOAT: dict[Path_, tuple[float | None, bool, float | None, bool]] = {
    ("compute", "peak_gflops"): (0, False, None, False),
    ("compute", "efficiency", "dense_conv"): (0, False, 1, True),
    ("compute", "efficiency", "elementwise"): (0, False, 1, True),
    ("compute", "op_overhead_us"): (0, True, None, False),
    ("compute", "mem_bandwidth_gb_s"): (0, False, None, False),
    ("power", "active_w"): (0, False, None, False),
    ("power", "idle_w"): (0, True, None, False),
    ("memory", "ram_mb"): (0, False, None, False),
    ("memory", "usable_fraction"): (0, False, 1, True),
}
PROF_CHOICE: list[Path_] = [("class",), ("compute", "mode"), ("power", "model")]
PROF_STR: list[Path_] = [("name",), ("class",), ("description",), ("link",),
                         ("compute", "mode"), ("power", "model"), ("sources", 0, "cite"),
                         ("sources", 0, "url"), ("sources", 1, "fields", 0)]
PROF_MAPPINGS: list[Path_] = [(), ("compute",), ("compute", "efficiency"), ("power",),
                              ("memory",), ("sources", 0), ("sources", 3)]
PROF_REQUIRED: list[Path_] = [
    ("name",), ("class",), ("compute",), ("power",), ("memory",), ("link",), ("sources",),
    ("compute", "mode"), ("compute", "peak_gflops"),
    ("compute", "mem_bandwidth_gb_s"), ("power", "idle_w"), ("memory", "ram_mb"),
    ("memory", "usable_fraction"), ("sources", 0, "fields"), ("sources", 2, "cite"),
]
PROF_SCALARS: list[Path_] = [*PROF_FLOAT, *PROF_CHOICE, ("name",), ("link",),
                             ("sources", 0, "cite")]


def _profile(path: Path_, value: Any) -> str:
    data = base_profile()
    set_in(data, path, value)
    return dump(data)


def profile_cases() -> st.SearchStrategy[Case]:
    base = dump(base_profile())
    assert not any(c in base for c in '[]{}"'), "base text must not hold flow/quote chars"
    float_fields = st.sampled_from(sorted(PROF_FLOAT, key=key_of))

    def out_of_range(path: Path_) -> st.SearchStrategy[Case]:
        values = st.one_of(floats_outside(*PROF_FLOAT[path]),
                           float_overflow, float_overflow.map(lambda n: -n))
        return values.map(lambda v: Case("number out of range / nan / inf / huge",
                                         _profile(path, v), key_of(path)))

    def wrong(paths: list[Path_], values: st.SearchStrategy[Any],
              family: str) -> st.SearchStrategy[Case]:
        return st.tuples(st.sampled_from(paths), values).map(
            lambda pv: Case(family, _profile(pv[0], pv[1]), key_of(pv[0])))

    def unknown_key(container: Path_, key: str, value: Any) -> Case:
        data = base_profile()
        node: Any = data
        for part in container:
            node = node[part]
        node[key] = value
        return Case("unknown key", dump(data), key_of((*container, key)), "unknown key")

    def missing(path: Path_) -> Case:
        data = base_profile()
        del_in(data, path)
        return Case("missing key", dump(data), key_of(path), "missing")

    def duplicate(path: Path_, value: float) -> Case:
        data = base_profile()
        set_in(data, path, value)  # the key exists once (optional keys too), then twice
        lines = dump(data).splitlines()
        *sections, leaf = path
        at = 0
        for depth, section in enumerate(sections):  # walk down to the leaf's mapping
            at = lines.index(f"{'  ' * depth}{section}:", at) + 1
        lines.insert(at, f"{'  ' * len(sections)}{leaf}: {value!r}")
        return Case("duplicate key", "\n".join(lines) + "\n", key_of(path), "duplicate key")

    def tagged(path: Path_, tag: str) -> Case:
        return Case("non-plain YAML tag", _profile(path, SENTINEL).replace(SENTINEL, tag),
                    key_of(path), "tag")

    return st.one_of(
        with_fragment(base).map(lambda t: Case("syntax error", t, None, "YAML")),
        empty_texts.map(lambda t: Case("empty file", t, None, None)),
        non_mapping_tops.map(lambda t: Case("top level not a mapping", t, None,
                                            "expected a mapping")),
        binary_junk.map(lambda b: Case("binary junk", b, None, "not a text file")),
        float_fields.flatmap(out_of_range),
        wrong(sorted(PROF_FLOAT, key=key_of), st.one_of(junk, st.booleans(), wrong_type),
              "strict number, wrong type (strings, booleans, lists)"),
        wrong(PROF_CHOICE, junk_word, "unknown choice / unicode junk"),
        wrong([("name",)], junk.map(lambda s: "zz/" + s), "bad profile name"),
        wrong(PROF_STR, st.one_of(st.integers(), wrong_type), "string field, wrong type"),
        wrong([("sources", 0, "fields")], st.just([]), "empty source fields"),
        wrong([("sources", 1, "fields", 0)], junk_word, "source cites no field"),
        wrong(PROF_SCALARS, deep_value, "deep nesting"),
        st.builds(unknown_key, st.sampled_from(PROF_MAPPINGS), junk_key,
                  st.one_of(st.integers(), junk)),
        st.builds(missing, st.sampled_from(PROF_REQUIRED)),
        st.builds(duplicate, float_fields, st.floats(0.1, 10)),
        st.builds(tagged, st.sampled_from(PROF_SCALARS), st.sampled_from(NON_PLAIN_TAGS)),
    )


def _profile_scenario(tmp: Path) -> tuple[Path, Path]:
    """A scenario whose first group runs on the profile in tmp/profiles/fuzz_pi.yaml."""
    (tmp / "profiles").mkdir()
    data = copy.deepcopy(TINY)
    data["profiles"] = ["profiles"]
    data["fleet"][0]["profile"] = PROFILE_NAME
    scenario = tmp / "scenario.yaml"
    scenario.write_text(dump(data), encoding="utf-8")
    return scenario, tmp / "profiles" / f"{PROFILE_NAME}.yaml"


@FUZZ
@given(case=profile_cases())
def test_fuzz_bad_profiles(case: Case) -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        scenario, profile = _profile_scenario(tmp)
        case.write(profile)
        out_dir = tmp / "out"
        what = f"{case.family}: {case.content[:300]!r}"
        for args in (["profiles", "validate", str(profile)],
                     ["validate", str(scenario)],
                     ["run", str(scenario), "-o", str(out_dir)]):
            assert_rejected(args, file=profile, key=case.key, needle=case.needle, what=what)
        assert_no_results(out_dir)


def test_fuzz_bases_are_valid(tmp_path: Path) -> None:
    """The unmutated inputs pass, so every rejection above is the mutation's doing."""
    scenario, profile = _profile_scenario(tmp_path)
    profile.write_text(dump(base_profile()), encoding="utf-8")
    for args in (["profiles", "validate", str(profile)], ["validate", str(scenario)]):
        code, out, crash = invoke(*args)
        assert code == 0 and crash is None, out
    plain = tmp_path / "tiny.yaml"
    plain.write_text(dump(TINY), encoding="utf-8")
    code, out, crash = invoke("validate", str(plain))
    assert code == 0 and crash is None, out


def test_fuzz_examples_cover_every_family() -> None:
    """Each mutation family is reachable (guards against a strategy silently collapsing)."""
    seen: set[str] = set()
    for strategy in (scenario_cases(), profile_cases()):
        @settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def collect(case: Case) -> None:
            seen.add(case.family)

        collect()
    assert {"syntax error", "binary junk", "unknown key", "deep nesting", "unsafe YAML tag",
            "non-plain YAML tag", "missing key", "duplicate key", "empty file",
            "float out of range / nan / inf", "int out of range"} <= seen


# ------------------------------------------------------------------------------ found bugs
#
# Each test states the expected behaviour (exit 2, a message naming the file, no traceback,
# no results folder). Bugs still open are pinned with xfail(strict=True): fixing one turns
# its test into an XPASS failure, then drop the marker. Tests without a marker are bugs this
# file found that have been fixed since (regression tests).


def _write(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def _expect_input_error(args: list[str], file: Path | str, out_dir: Path | None = None,
                        key: str | None = None) -> str:
    code, out, crash = invoke(*args)
    assert crash is None, f"crashed: {crash!r}\n{out}"
    assert code == 2 and "Traceback" not in out, out
    assert str(file) in out, out
    if key is not None:
        assert f"'{key}'" in out, out
    if out_dir is not None:
        assert_no_results(out_dir)
    return out


def _tiny(tmp: Path, mutate: Callable[[dict], None] | None = None) -> Path:
    data = copy.deepcopy(TINY)
    if mutate:
        mutate(data)
    return _write(tmp, "scenario.yaml", dump(data))


DESCRIPTION = "description: Raspberry Pi 4 Model B (4 GB), CPU training in fp32"


def _profile_with_description(tmp: Path, yaml_value: str) -> Path:
    text = dump(base_profile()).replace(DESCRIPTION, "description: " + yaml_value)
    (tmp / "profiles").mkdir(exist_ok=True)
    return _write(tmp / "profiles", f"{PROFILE_NAME}.yaml", text)


def _scenario_with_override_description(tmp: Path, yaml_value: str) -> Path:
    data = copy.deepcopy(TINY)
    data["fleet"][0]["override"] = {"description": SENTINEL}
    return _write(tmp, "scenario.yaml", dump(data).replace(SENTINEL, yaml_value))


@pytest.mark.parametrize("via", ["profiles validate", "scenario"])
def test_profile_with_control_character(tmp_path: Path, via: str) -> None:
    """Found: hardware/loader.py read_yaml built yaml.SafeLoader(text) outside its try, so
    a control character raised yaml.reader.ReaderError: traceback, exit 1."""
    profile = _profile_with_description(tmp_path, "Rasp\x07berry")
    if via == "profiles validate":
        _expect_input_error(["profiles", "validate", str(profile)], profile)
    else:
        scenario = _tiny(tmp_path, lambda d: d.update(profiles=["profiles"]))
        _expect_input_error(["run", str(scenario), "-o", str(tmp_path / "out")], profile,
                            tmp_path / "out")


DEEP = 3000


def test_deeply_nested_scenario(tmp_path: Path) -> None:
    """Found: config/loader.py read_yaml caught yaml.YAMLError only; PyYAML's recursive
    composer raised RecursionError on ~500 nested brackets: traceback, exit 1."""
    path = _write(tmp_path, "scenario.yaml", "rounds: " + "[" * DEEP + "]" * DEEP + "\n")
    _expect_input_error(["run", str(path), "-o", str(tmp_path / "out")], path,
                        tmp_path / "out")


def test_deeply_nested_profile(tmp_path: Path) -> None:
    """Found: the same RecursionError in hardware/loader.py read_yaml."""
    path = _write(tmp_path, "p.yaml", "name: " + "[" * DEEP + "]" * DEEP + "\n")
    _expect_input_error(["profiles", "validate", str(path)], path)


def test_recursive_alias_in_profile(tmp_path: Path) -> None:
    """Found: hardware/loader.py _check_nodes followed a self-referencing alias (&a [*a])
    forever: RecursionError, exit 1."""
    path = _profile_with_description(tmp_path, "&a [*a]")
    _expect_input_error(["profiles", "validate", str(path)], path)


def test_recursive_alias_in_fleet_override(tmp_path: Path) -> None:
    """Found: hardware/loader.py apply_override -> _to_plain recursed into a
    self-referencing override value: RecursionError, exit 1."""
    path = _scenario_with_override_description(tmp_path, "&a [*a]")
    _expect_input_error(["validate", str(path)], path)


def _laughs(levels: int) -> str:
    """A flow list of nested aliases: 10**levels leaves from ~10*levels YAML nodes."""
    items = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["profile", "fleet override"])
def test_billion_laughs_is_refused_quickly(tmp_path: Path, where: str) -> None:
    """Found: alias expansion walked leaf by leaf (hardware/loader.py _check_nodes and
    _to_plain): a 1 kB file with 9 alias levels (10**9 leaves) ran for hours."""
    import time

    if where == "profile":
        path = _profile_with_description(tmp_path, _laughs(9))
        args = ["profiles", "validate", str(path)]
    else:
        path = _scenario_with_override_description(tmp_path, _laughs(9))
        args = ["validate", str(path)]
    t0 = time.perf_counter()
    _expect_input_error(args, path)
    assert time.perf_counter() - t0 < 10


def test_missing_profiles_entry_names_the_scenario(tmp_path: Path) -> None:
    """Found: simulation.py resolve_fleet loaded the library without source_file, so a
    missing profiles: entry named neither the scenario file nor key 'profiles[0]'."""
    path = _tiny(tmp_path, lambda d: d.update(profiles=["no_such_dir"]))
    _expect_input_error(["validate", str(path)], path, key="profiles[0]")


@pytest.mark.parametrize("partition", [
    {"kind": "shards", "shards_per_client": 10_000},
    {"kind": "dirichlet", "alpha": 1.0, "min_share": 0.99},
])
def test_unsatisfiable_partition(tmp_path: Path, partition: dict) -> None:
    """Found: simulation.py run_scenario let partition()'s ValueError through
    (data/partition.py): validate said ok, run showed a traceback, exit 1."""
    path = _tiny(tmp_path, lambda d: d["data"].update(partition=partition))
    _expect_input_error(["run", str(path), "-o", str(tmp_path / "out")], path,
                        tmp_path / "out")


LONG = "a" * 300  # one path component over NAME_MAX (255): OSError ENAMETOOLONG


@pytest.mark.parametrize("cmd", ["validate", "run", "profiles validate"])
def test_cli_file_name_too_long(tmp_path: Path, cmd: str) -> None:
    """Found: config/loader.py read_yaml (path.exists()) and profiles_cli.py validate_cmd
    (f.is_dir()) raised OSError ENAMETOOLONG for a too-long FILE argument: traceback."""
    _expect_input_error([*cmd.split(), str(tmp_path / f"{LONG}.yaml")], LONG[:100])


def test_profiles_entry_name_too_long(tmp_path: Path) -> None:
    path = _tiny(tmp_path, lambda d: d.update(profiles=[LONG]))
    _expect_input_error(["run", str(path), "-o", str(tmp_path / "out")], path,
                        tmp_path / "out", key="profiles[0]")


def test_data_root_name_too_long(tmp_path: Path) -> None:
    path = _tiny(tmp_path, lambda d: d["data"].update(dataset="fashion_mnist", root=LONG))
    _expect_input_error(["validate", str(path)], path, key="data.root")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def test_cuda_device_without_gpu_is_an_input_error(tmp_path: Path) -> None:
    """Found: execution.device=cuda on a host without CUDA crashed in the worker with a
    RuntimeError traceback (fixed by the CUDA guard in simulation.py)."""
    if _has_cuda():
        pytest.skip("this host has CUDA; the scenario is valid here")
    path = _tiny(tmp_path, lambda d: (d.update(rounds=1),
                                      d.update(execution={"device": "cuda"})))
    _expect_input_error(["run", str(path), "-o", str(tmp_path / "out")], path,
                        tmp_path / "out", key="execution.device")
