"""The one reader of run folders: typed rows and columns from the schema, events, metadata.

``fedsim verify`` reads typed rows (it reports problems by line), the reports read numpy
columns (they plot them), a resumed run and the multi-seed summary read round records; all
of them parse through :func:`read_rows`, so a cell is read the same way everywhere and a bad
one is reported the same way: an :class:`~fedsim.errors.InputError` naming the file, the
line and the column. Torch is never imported: a report can be made from a copied folder.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import InputError
from fedsim.records.schema import EVENT_REQUIRED, ROUNDS, RUN_FILES, Column, CsvSchema

_ROUND_RE = re.compile(r'"round"\s*:\s*(-?\d+)\s*[,}]')


@dataclass
class Row:
    """One typed CSV row and the line it came from (for messages that point at it)."""

    line: int
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _cell(text: str, col: Column, file: Path, line: int) -> Any:
    """One cell typed by its column: ints strict, floats accept nan, empty only if nullable."""
    if col.type is str:
        return text
    if text == "":
        if col.nullable:
            return None
        if col.type is float:
            return math.nan  # a float column left empty (e.g. accuracy not evaluated)
    try:
        return int(text) if col.type is int else float(text)
    except ValueError:
        what = "an integer" if col.type is int else "a number"
        raise InputError(f"line {line}: expected {what}, got {text!r}", file=file,
                         key=col.name) from None


def _header(reader: Any, schema: CsvSchema, path: Path) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise InputError("empty file (expected a CSV header)", file=path)
    header = [h.strip() for h in header]
    missing = [c.name for c in schema.columns if c.required and c.name not in header]
    if missing:
        raise InputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(header)}; not a fedsim run file?)", file=path)
    return header


def _columnar_dir(path: Path) -> Path | None:
    """The Parquet table standing in for a missing text file of a columnar run folder."""
    from fedsim.records.columnar import TEXT_TABLES

    table = TEXT_TABLES.get(path.name)
    if table is None or path.exists():
        return None
    d = path.parent / table
    return d if d.is_dir() else None


def read_rows(path: Path, schema: CsvSchema, *, keep_rounds: set[int] | None = None,
              header_only: bool = False) -> list[Row]:
    """Typed rows of one run CSV. Columns absent from an older file are absent from its rows.

    ``keep_rounds`` reads only those rounds' rows (bits.csv of a long run is large: the
    round cell is compared as text before anything else is parsed); ``header_only`` checks
    the columns and reads no row. In a columnar run folder the rows come from the table's
    Parquet parts (``line`` then counts rows from 2, as a CSV's would).
    """
    table_dir = _columnar_dir(path)
    if table_dir is not None:
        from fedsim.records.columnar import iter_table_rows

        if header_only:
            return []
        names = schema.names
        rows = []
        for i, values in enumerate(iter_table_rows(path.parent, table_dir.name, names), 2):
            if keep_rounds is None or values[0] in keep_rounds:
                rows.append(Row(i, dict(zip(names, values, strict=True))))
        return rows
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = _header(reader, schema, path)
            cols = [(i, schema.column(h)) for i, h in enumerate(header) if h in schema.names]
            round_at = header.index("round") if "round" in header else None
            keep = {str(r) for r in keep_rounds} if keep_rounds is not None else None
            rows = []
            for lineno, raw in enumerate([] if header_only else reader, 2):
                if not raw:
                    continue
                if keep is not None and round_at is not None and raw[round_at] not in keep:
                    continue
                if len(raw) != len(header):
                    raise InputError(f"line {lineno}: {len(raw)} fields, the header has "
                                     f"{len(header)}", file=path)
                rows.append(Row(lineno, {c.name: _cell(raw[i].strip(), c, path, lineno)
                                         for i, c in cols}))
            return rows
    except UnicodeDecodeError:
        raise InputError("not a text file (expected UTF-8 CSV)", file=path) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None


class Table:
    """Columns of one CSV file: numbers as float arrays (empty cell = NaN), text as objects."""

    def __init__(self, columns: dict[str, np.ndarray], n: int) -> None:
        self.columns = columns
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def where(self, mask: np.ndarray) -> Table:
        return Table({k: v[mask] for k, v in self.columns.items()}, int(np.count_nonzero(mask)))

    def sorted_by(self, name: str) -> Table:
        order = np.argsort(self.columns[name], kind="stable")
        return Table({k: v[order] for k, v in self.columns.items()}, self.n)


def read_table(path: Path, schema: CsvSchema, *, keep_rounds: set[int] | None = None,
               header_only: bool = False) -> Table:
    """The columns of one run CSV as arrays, parsed by :func:`read_rows` (or read straight
    from the Parquet parts of a columnar run: text columns share one object per value)."""
    table_dir = _columnar_dir(path)
    if table_dir is not None:
        from fedsim.records.columnar import read_columns

        cols = read_columns(path.parent, table_dir.name, schema, keep_rounds=keep_rounds,
                            header_only=header_only)
        n = len(next(iter(cols.values()))) if cols else 0
        return Table(cols, n)
    rows = read_rows(path, schema, keep_rounds=keep_rounds, header_only=header_only)
    present = [c for c in schema.columns if not rows or c.name in rows[0].values]
    if header_only or not rows:
        with open(path, encoding="utf-8", newline="") as f:
            header = {h.strip() for h in next(csv.reader(f), [])}
        present = [c for c in schema.columns if c.name in header]
    out: dict[str, np.ndarray] = {}
    for c in present:
        vals = [r.values[c.name] for r in rows]
        if c.type is str:
            out[c.name] = np.array(vals, dtype=object)
        else:
            out[c.name] = np.array([math.nan if v is None else v for v in vals], dtype=float)
    return Table(out, len(rows))


def iter_events(path: Path, rounds: set[int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, event)`` of events.jsonl in file order, each checked for ``t``, ``round``,
    ``kind`` (and an integer ``client`` when present). With ``rounds``, lines of other rounds
    are skipped before they are parsed (a long run's log is large). A columnar run's
    events come from its Parquet parts (``line`` is then the row number)."""
    table_dir = _columnar_dir(path)
    if table_dir is not None:
        from fedsim.records.columnar import iter_event_dicts

        for row, ev in iter_event_dicts(path.parent, rounds):
            yield row, ev
        return
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        with f:
            for lineno, text in enumerate(f, 1):
                if not text.strip():
                    continue
                if rounds is not None:
                    m = _ROUND_RE.search(text)
                    if m and int(m.group(1)) not in rounds:
                        continue
                ev = _event(text, lineno, path)
                if rounds is None or ev["round"] in rounds:
                    yield lineno, ev
    except UnicodeDecodeError:
        raise InputError("not a text file (expected UTF-8 JSON lines)", file=path) from None


def _event(text: str, lineno: int, path: Path) -> dict[str, Any]:
    try:
        ev = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {lineno}: not valid JSON ({exc.msg})", file=path) from None
    if not isinstance(ev, dict):
        raise InputError(f"line {lineno}: expected a JSON object", file=path)
    for key, kinds in EVENT_REQUIRED.items():
        val = ev.get(key)
        bad = not isinstance(val, kinds) or isinstance(val, bool)
        if not bad and key == "t":
            try:
                float(val)
            except OverflowError:  # an integer beyond any float
                bad = True
        if bad:
            raise InputError(f"line {lineno}: event needs '{key}' "
                             f"({'/'.join(k.__name__ for k in kinds)}), got {val!r}",
                             file=path, key=key)
    if "client" in ev and (not isinstance(ev["client"], int) or isinstance(ev["client"], bool)):
        raise InputError(f"line {lineno}: 'client' must be an integer, got {ev['client']!r}",
                         file=path, key="client")
    return ev


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A JSON or YAML mapping of a run folder (summary.json, scenario.yaml, run.json)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InputError("not a text file", file=path) from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise InputError(f"not valid {kind} ({what}): {str(exc).splitlines()[0]}",
                         file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    if data is None and path.suffix != ".json":
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping ({what}), got {type(data).__name__}", file=path)
    return data


def read_round_records(path: Path) -> list[Any]:
    """RoundRecords back from rounds.csv (a resumed run's summary covers every round)."""
    from fedsim.engine.records import RoundRecord

    return [RoundRecord(**{k: v for k, v in r.values.items()})
            for r in read_rows(path, ROUNDS)]


# -- run folders --------------------------------------------------------------------------
def run_files_present(path: Path) -> list[str]:
    """The run files a folder has (a columnar folder's Parquet tables count for their text
    files)."""
    from fedsim.records.columnar import TEXT_TABLES

    return [name for name in RUN_FILES if (path / name).is_file()
            or (name in TEXT_TABLES and (path / TEXT_TABLES[name]).is_dir())]


def child_runs(path: Path) -> list[Path]:
    """Run folders directly under ``path`` (a seeds parent holds one per seed)."""
    if not path.is_dir():
        return []
    return [p for p in sorted(path.iterdir())
            if p.is_dir() and not p.name.startswith(".")
            and len(run_files_present(p)) == len(RUN_FILES)]


def check_run_folder(path: Path) -> None:
    """Raise an InputError saying what is wrong if ``path`` is not a complete run folder."""
    if not path.exists():
        raise InputError("no such folder", file=path)
    if not path.is_dir():
        raise InputError("not a run folder (it is a file); expected the folder that "
                         f"holds {', '.join(RUN_FILES)}", file=path)
    present = run_files_present(path)
    missing = [name for name in RUN_FILES if name not in present]
    if not missing:
        return
    hint = ""
    if path.name.startswith(".") and path.name.endswith(".partial"):
        hint = " (an unfinished run: the simulator renames it into place only when it ends)"
    if not present:
        children = child_runs(path)
        if children:
            raise InputError(
                f"not a run folder but a parent of {len(children)} run folders "
                f"({', '.join(c.name for c in children[:4])}"
                f"{', ...' if len(children) > 4 else ''}); report one of them, or pass the "
                "parent to 'fedsim compare'", file=path)
        raise InputError(
            f"not a fedsim run folder{hint}: none of {', '.join(RUN_FILES)} found", file=path)
    raise InputError(f"incomplete run folder{hint}: missing {', '.join(missing)}", file=path)
