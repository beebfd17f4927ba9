"""The one file reader (fedsim.yamlio): every failure an InputError with file, key and line,
the same for scenarios, hardware profiles and availability traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.config.loader import load_scenario
from fedsim.engine.availability import load_trace
from fedsim.errors import InputError
from fedsim.hardware.loader import load_profile_file
from fedsim.yamlio import read_text, read_yaml

BASE = "name: t\nrounds: 2\nfleet:\n  - {profile: raspberry_pi_4, count: 2}\n"


def _err(path: Path, **kw: object) -> InputError:
    with pytest.raises(InputError) as info:
        read_yaml(path, **kw)  # type: ignore[arg-type]
    assert info.value.file == str(path)
    return info.value


def _write(tmp_path: Path, text: str | bytes, name: str = "f.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "key", "needles"), [
    ("a:\n  b: 1\n  b: 2\n", "a.b", ["duplicate key (line 3)"]),
    ("a:\n  - {x: 1, x: 2}\n", "a[0].x", ["duplicate key (line 2)"]),
    ("a:\n  b: [1, 2\nc: 3\n", "a.b", ["invalid YAML at line", "flow sequence at line 2"]),
    ("a: 1\nb: !!int abc\n", "b", ["line 2, column 4", "cannot read 'abc' as !!int"]),
    ("a: 1\nb: !!timestamp 2020-13-45\n", "b", ["line 2", "!!timestamp"]),
    ("a:\n  b: !!python/object/apply:os.system ['true']\n", "a.b",
     ["tag '!!python/object/apply:os.system' is not allowed (line 2)"]),
    ("a: !!set {x: null}\n", "a", ["tag '!!set'"]),
    ("a: 1\nb: x\x07y\n", "b", ["line 2, column 5", "#x0007"]),
    ("a: &x [*x]\n", "a[0]", ["recursive alias (line 1)"]),
])
def test_yaml_problems_name_key_and_line(tmp_path: Path, text: str, key: str,
                                         needles: list[str]) -> None:
    err = _err(_write(tmp_path, text))
    assert err.key == key
    for needle in needles:
        assert needle in err.detail, err.detail


@pytest.mark.parametrize(("content", "needle"), [
    (b"a: 1\nb: \xff\n", "not a text file (byte 0xff on line 2 is not UTF-8)"),
    (None, "file not found"),
    ("dir", "expected a file, found a directory"),
])
def test_file_problems_name_the_file(tmp_path: Path, content: bytes | str | None,
                                     needle: str) -> None:
    p = tmp_path / "f.yaml"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content == "dir":
        p.mkdir()
    assert needle in _err(p).detail
    with pytest.raises(InputError, match=r"not a text file|not found|directory") as info:
        read_text(p)
    assert info.value.file == str(p)


def test_top_level_mapping(tmp_path: Path) -> None:
    for text in ("", "# nothing\n", "~\n"):
        assert "the file is empty; expected a mapping of things" in _err(
            _write(tmp_path, text), mapping_of="things").detail
    err = _err(_write(tmp_path, "- 1\n"), mapping_of="things")
    assert "expected a mapping of things at the top level, got list" in err.detail
    assert read_yaml(_write(tmp_path, "- 1\n")) == [1]  # no shape asked: any document


def test_scenarios_and_profiles_word_yaml_problems_alike(tmp_path: Path) -> None:
    """The same mistake reads the same in a scenario and in a profile (one reader)."""
    scen = _write(tmp_path, BASE + "rounds: 3\n", "s.yaml")
    prof = _write(tmp_path, "name: a\nclass: sbc\nname: b\n", "p.yaml")
    with pytest.raises(InputError) as a:
        load_scenario(scen)
    with pytest.raises(InputError) as b:
        load_profile_file(prof)
    assert (a.value.file, a.value.key, a.value.detail) == (
        str(scen), "rounds", "invalid YAML: duplicate key (line 5)")
    assert (b.value.file, b.value.key, b.value.detail) == (
        str(prof), "name", "invalid YAML: duplicate key (line 3)")
    for path, load in ((scen, load_scenario), (prof, load_profile_file)):
        path.write_text("")
        with pytest.raises(InputError, match="the file is empty; expected a mapping of"):
            load(path)


# ------------------------------------------------------------------------ traces (CSV)


def _trace(tmp_path: Path, content: str | bytes) -> Path:
    return _write(tmp_path, content, "trace.csv")


def test_trace_bad_row_names_trace_file_and_line(tmp_path: Path) -> None:
    p = _trace(tmp_path, "client,start_s,end_s\n0,0,10\n0,abc,20\n")
    with pytest.raises(InputError) as info:
        load_trace(p, [{"g"}], file="s.yaml", key="availability.trace")
    assert info.value.file == str(p) and "line 3" in info.value.detail


def test_trace_not_utf8_names_trace_file_and_line(tmp_path: Path) -> None:
    p = _trace(tmp_path, b"client,start_s,end_s\n0,0,10\ng\xff,0,10\n")
    with pytest.raises(InputError) as info:
        load_trace(p, [{"g"}], file="s.yaml", key="availability.trace")
    assert info.value.file == str(p)
    assert "not a text file (byte 0xff on line 3" in info.value.detail


def test_missing_or_directory_trace_names_the_scenario_key(tmp_path: Path) -> None:
    for p in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(InputError) as info:
            load_trace(p, [{"g"}], file="s.yaml", key="fleet[0].availability.trace")
        assert info.value.file == "s.yaml" and info.value.key == "fleet[0].availability.trace"


def test_trace_keeps_crlf_and_quoted_fields(tmp_path: Path) -> None:
    p = _trace(tmp_path, b'client,start_s,end_s\r\n"g",0,10\r\n0,5,20\r\n')
    assert load_trace(p, [{"g"}], file="s.yaml", key="k") == {0: ((0.0, 20.0),)}
