"""The columnar run folder: events, client records and bits as Parquet, one part per round.

Why: at population scale the text files cost more than the simulation (10^7 client-rounds
are ~7 GB of JSON lines and CSV, and formatting them takes minutes). With
``execution.events: parquet`` (or ``auto`` above :data:`AUTO_CLIENT_ROUNDS`) the run
folder holds ``events/``, ``clients/`` and ``bits/`` directories instead of
``events.jsonl``, ``clients.csv`` and ``bits.csv``: the same fields (the schema's columns;
the events' keys), zstd-compressed, one file per round (``part-000000.parquet``, ...), so a
reader can go through a run part by part in bounded memory and a resumed run drops the
parts written after its checkpoint. ``fedsim export RUN`` turns them back into the text
files, byte for byte what a text run writes.

``rounds.csv`` stays text in both layouts (one row per round).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.engine.columns import KIND_FIELDS, ClientBatch, EventBatch
from fedsim.engine.records import ClientRoundRecord
from fedsim.records.schema import BITS, CLIENTS

#: ``auto`` writes Parquet when the run may record more client-rounds than this.
AUTO_CLIENT_ROUNDS = 200_000
TABLES = ("events", "clients", "bits")
#: the text file each table stands for
TEXT_TABLES = {"events.jsonl": "events", "clients.csv": "clients", "bits.csv": "bits"}
_PART = "part-{:06d}.parquet"
_KINDS_KEY = b"fedsim.kinds"  # per event kind, its keys in emission order (for export)


def _pa() -> Any:
    """pyarrow, imported only when a columnar folder is written or read."""
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.parquet

    return pa


def parts(folder: Path, table: str) -> list[Path]:
    """The part files of one table, in write order."""
    d = folder / table
    return sorted(d.glob("part-*.parquet")) if d.is_dir() else []


def is_columnar(folder: Path) -> bool:
    return (folder / "events").is_dir() and not (folder / "events.jsonl").exists()


class ColumnarSink:
    """Buffers one round's events and records, and writes them as one part per table."""

    def __init__(self, folder: Path, layer_params: list[tuple[str, int]],
                 parts_written: int | None = None) -> None:
        self.folder = folder
        self.layer_params = layer_params
        for table in TABLES:
            (folder / table).mkdir(exist_ok=True)
        self.n = 0
        if parts_written is not None:  # resume: drop parts written after the checkpoint
            self.n = parts_written
            for table in TABLES:
                for p in parts(folder, table)[parts_written:]:
                    p.unlink()
        self._events: list[Any] = []  # dicts and EventBatches, in emission order
        self._clients: list[Any] = []  # ClientRoundRecords and ClientBatches

    def on_event(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    def on_events(self, batch: EventBatch) -> None:
        self._events.append(batch)

    def on_client(self, rec: ClientRoundRecord) -> None:
        self._clients.append(rec)

    def on_clients(self, batch: ClientBatch) -> None:
        self._clients.append(batch)

    def flush(self) -> int:
        """Write what was buffered as the next part of each table; the parts written."""
        if not self._events and not self._clients:
            return self.n
        pa = _pa()
        events, kinds = _event_table(pa, self._events)
        meta = {_KINDS_KEY: json.dumps(kinds).encode()}
        self._write(pa, "events", events.replace_schema_metadata(meta))
        clients, bits = _client_tables(pa, self._clients, self.layer_params)
        self._write(pa, "clients", clients)
        self._write(pa, "bits", bits)
        self._events, self._clients = [], []
        self.n += 1
        return self.n

    def _write(self, pa: Any, table: str, data: Any) -> None:
        import os

        path = self.folder / table / _PART.format(self.n)
        tmp = path.with_suffix(".tmp")
        floats = [f.name for f in data.schema if pa.types.is_floating(f.type)]
        # floats byte-stream-split (their exponent bytes compress), everything else
        # dictionary-encoded: ~85 bytes per client-round instead of ~125
        pa.parquet.write_table(data, tmp, compression="zstd", write_statistics=False,
                               use_dictionary=[c for c in data.column_names
                                               if c not in floats],
                               use_byte_stream_split=floats or False)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)


# -- building tables --------------------------------------------------------------------------
def _event_table(pa: Any, items: list[Any]) -> tuple[Any, dict[str, list[str]]]:
    kinds: dict[str, list[str]] = {}
    tables = []
    dicts: list[dict[str, Any]] = []

    def flush_dicts() -> None:
        if dicts:
            tables.append(_dict_events(pa, dicts, kinds))
            dicts.clear()

    for item in items:
        if isinstance(item, EventBatch):
            flush_dicts()
            for name in item.kinds:
                kinds.setdefault(name, ["client", *KIND_FIELDS[name]])
            tables.append(_batch_events(pa, item))
        else:
            dicts.append(item)
    flush_dicts()
    if not tables:
        return pa.table({"t": pa.array([], pa.float64()), "round": pa.array([], pa.int64()),
                         "kind": pa.array([], pa.string())}), kinds
    return pa.concat_tables(tables, promote_options="permissive"), kinds


def _dict_events(pa: Any, dicts: list[dict[str, Any]], kinds: dict[str, list[str]]) -> Any:
    names: dict[str, None] = {}
    for ev in dicts:
        keys = [k for k in ev if k not in ("t", "round", "kind")]
        kinds.setdefault(ev["kind"], keys)
        names.update(dict.fromkeys(keys))
    cols = {"t": pa.array([ev["t"] for ev in dicts], pa.float64()),
            "round": pa.array([ev["round"] for ev in dicts], pa.int64()),
            "kind": pa.array([ev["kind"] for ev in dicts], pa.string())}
    for name in names:
        cols[name] = pa.array([ev.get(name) for ev in dicts])
    return pa.table(cols)


def _batch_events(pa: Any, b: EventBatch) -> Any:
    cols = {"t": pa.array(b.t, pa.float64()),
            "round": pa.array(np.full(len(b), b.round, dtype=np.int64)),
            "kind": _coded(pa, b.kind, b.kinds),
            "client": pa.array(b.client.astype(np.int64))}
    used = {f for k in set(b.kind.tolist()) for f in KIND_FIELDS[b.kinds[k]]}
    for name, col in b.fields.items():
        if name not in used:
            continue
        if name in b.codes:
            cols[name] = _coded(pa, col, b.codes[name])
        else:
            cols[name] = pa.array(col.tolist() if col.dtype == object else col)
    return pa.table(cols)


def _coded(pa: Any, codes: np.ndarray, values: tuple[str, ...] | list[str]) -> Any:
    """Text from int codes (-1: null), decoded by Arrow, not one Python string per row."""
    idx = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(values), pa.string())).cast(
        pa.string())


_PA_TYPES = {int: "int64", float: "float64", str: "string"}


def _client_tables(pa: Any, items: list[Any], layers: list[tuple[str, int]]) -> tuple[Any, Any]:
    schema = pa.schema([(c.name, getattr(pa, _PA_TYPES[c.type])()) for c in CLIENTS.columns])
    bschema = pa.schema([(c.name, getattr(pa, _PA_TYPES[c.type])()) for c in BITS.columns])
    clients, bits = [], []
    batches: list[ClientBatch] = []
    singles: list[ClientRoundRecord] = []
    for item in [*items, None]:  # runs of single records become one batch
        if isinstance(item, ClientRoundRecord):
            singles.append(item)
            continue
        if singles:
            batches.append(_records_batch(singles))
            singles = []
        if item is not None:
            batches.append(item)
    for batch in batches:
        cols = {}
        for c in CLIENTS.columns:
            v = batch.columns[c.name]
            if c.name in batch.codes:
                cols[c.name] = _coded(pa, v, batch.codes[c.name])
            elif c.type is float:
                cols[c.name] = pa.array(v.astype(np.float64), mask=np.isnan(v)
                                        if c.nullable else None)
            else:
                cols[c.name] = pa.array(v, type=schema.field(c.name).type)
        clients.append(pa.table(cols, schema=schema))
        bits.append(_bit_table(pa, batch, layers, bschema))
    if not clients:
        return schema.empty_table(), bschema.empty_table()
    return pa.concat_tables(clients), pa.concat_tables(bits)


def _bit_table(pa: Any, batch: ClientBatch, layers: list[tuple[str, int]], schema: Any) -> Any:
    """bits.csv's rows of a batch: one per client and layer (-1 bits: an empty cell)."""
    m, n_layers = len(batch), len(layers)
    table = np.full((len(batch.bit_vectors) + 1, max(1, n_layers)), -1, dtype=np.int64)
    for i, vec in enumerate(batch.bit_vectors):
        k = min(len(vec), n_layers)
        table[i, :k] = vec[:k]
    down = table[batch.bits_down][:, :n_layers].ravel()
    up = table[batch.bits_up][:, :n_layers].ravel()
    return pa.table({
        "round": pa.array(np.repeat(batch.columns["round"], n_layers).astype(np.int64)),
        "client_id": pa.array(np.repeat(batch.columns["client_id"], n_layers)
                              .astype(np.int64)),
        "layer": _coded(pa, np.tile(np.arange(n_layers), m), [n for n, _ in layers]),
        "params": pa.array(np.tile(np.array([p for _, p in layers], dtype=np.int64), m)),
        "bits_down": pa.array(down, mask=down < 0),
        "bits_up": pa.array(up, mask=up < 0),
    }, schema=schema)


def _records_batch(recs: list[ClientRoundRecord]) -> ClientBatch:
    """Single records (the per-client engine) as one batch."""
    cols: dict[str, np.ndarray] = {}
    codes: dict[str, tuple[str, ...]] = {}
    for c in CLIENTS.columns:
        values = [getattr(rec, c.name) for rec in recs]
        if c.type is str:
            table = {v: i for i, v in enumerate(dict.fromkeys(values))}
            cols[c.name] = np.array([table[v] for v in values], dtype=np.int64)
            codes[c.name] = tuple(table)
        elif c.name == "battery_j":
            cols[c.name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            cols[c.name] = np.array(values, dtype=c.type)
    vectors: dict[tuple[int, ...], int] = {}
    down = [vectors.setdefault(tuple(r.bits_down), len(vectors)) if r.bits_down else -1
            for r in recs]
    up = [vectors.setdefault(tuple(r.bits_up), len(vectors)) if r.bits_up else -1
          for r in recs]
    return ClientBatch(cols, list(vectors), np.array(down, dtype=np.int64),
                       np.array(up, dtype=np.int64), np.zeros(len(recs), dtype=np.int64), codes)


# -- reading and export -----------------------------------------------------------------------
def read_part(path: Path, columns: list[str] | None = None) -> Any:
    return _pa().parquet.read_table(path, columns=columns)


def iter_event_dicts(folder: Path, rounds: set[int] | None = None
                     ) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row, event)`` of every part, as the dicts events.jsonl holds (same keys, order);
    with ``rounds``, only those rounds' events (rows still count every event)."""
    row = 0
    for path in parts(folder, "events"):
        if rounds is not None:
            seen = set(read_part(path, ["round"]).column("round").to_pylist())
            if not seen & rounds:
                row += _num_rows(path)
                continue
        for ev in _part_events(path):
            row += 1
            if rounds is None or ev["round"] in rounds:
                yield row, ev


def _num_rows(path: Path) -> int:
    return int(_pa().parquet.ParquetFile(path).metadata.num_rows)


def read_columns(folder: Path, table: str, schema: Any, *,
                 keep_rounds: set[int] | None = None,
                 header_only: bool = False) -> dict[str, np.ndarray]:
    """A table's columns as arrays: numbers as floats (null = NaN), text as objects (each
    distinct value one shared string, so 10^7 rows of a device name cost pointers only)."""
    pa = _pa()
    chunks: dict[str, list[np.ndarray]] = {c.name: [] for c in schema.columns}
    for path in ([] if header_only else parts(folder, table)):
        t = read_part(path)
        if keep_rounds is not None:
            t = t.filter(pa.compute.is_in(t.column("round"), value_set=pa.array(
                sorted(keep_rounds), pa.int64())))
        for c in schema.columns:
            if c.name not in t.column_names:
                continue
            col = t.column(c.name).combine_chunks()
            if c.type is str:
                enc = col.dictionary_encode()
                values = np.array(enc.dictionary.to_pylist(), dtype=object)
                codes = enc.indices.to_numpy(zero_copy_only=False)
                chunks[c.name].append(values[codes] if len(values) else
                                      np.array([], dtype=object))
            else:
                chunks[c.name].append(col.cast(pa.float64()).fill_null(np.nan).to_numpy())
    out = {}
    for c in schema.columns:
        parts_ = chunks[c.name]
        out[c.name] = (np.concatenate(parts_) if parts_ else
                       np.array([], dtype=object if c.type is str else float))
    return out


def iter_table_rows(folder: Path, table: str, names: list[str]) -> Iterator[list[Any]]:
    """The rows of ``clients`` or ``bits``, part by part, as lists in ``names`` order."""
    for path in parts(folder, table):
        whole = read_part(path)
        for start in range(0, whole.num_rows, _SLICE):
            t = whole.slice(start, _SLICE)
            cols = [t.column(n).to_pylist() if n in t.column_names else [None] * t.num_rows
                    for n in names]
            yield from (list(r) for r in zip(*cols, strict=True))


_SLICE = 65_536  # rows turned into Python objects at a time


class Part:
    """One part (one round's records) of a columnar run, read once as Arrow tables and
    turned into Python rows slice by slice, so memory stays bounded by the Arrow form."""

    def __init__(self, folder: Path, i: int, event_row0: int, line0: dict[str, int]) -> None:
        pa = _pa()
        self.events = read_part(folder / "events" / _PART.format(i))
        self.kinds = json.loads((self.events.schema.metadata or {}).get(_KINDS_KEY, b"{}"))
        self.event_row0 = event_row0
        self.line0 = dict(line0)
        self.tables = {}
        for table in ("clients", "bits"):
            path = folder / table / _PART.format(i)
            self.tables[table] = read_part(path) if path.exists() else None
        col = self.events.column("client") if "client" in self.events.column_names else None
        self.client = (col.to_numpy(zero_copy_only=False) if col is not None
                       else np.full(self.events.num_rows, None, dtype=object))
        self.has_client = (pa.compute.is_valid(col).to_numpy(zero_copy_only=False)
                           if col is not None else np.zeros(self.events.num_rows, dtype=bool))

    def rows_in(self, table: str) -> int:
        t = self.tables[table]
        return 0 if t is None else int(t.num_rows)

    def event_dicts(self, which: np.ndarray | None = None) -> list[tuple[int, dict]]:
        """``(row, event)`` for the selected event rows (all by default), in file order."""
        idx = np.arange(self.events.num_rows) if which is None else np.flatnonzero(which)
        out: list[tuple[int, dict]] = []
        for start in range(0, len(idx), _SLICE):
            take = idx[start:start + _SLICE]
            sub = self.events.take(take)
            out += [(self.event_row0 + 1 + int(r), ev)
                    for r, ev in zip(take.tolist(), _table_events(sub, self.kinds),
                                     strict=True)]
        return out

    def rows(self, table: str, schema: Any, lo: int, hi: int) -> list[Any]:
        """Typed rows of ``clients`` / ``bits`` whose client id is in ``[lo, hi)``."""
        from fedsim.records.reader import Row

        t = self.tables[table]
        if t is None:
            return []
        ids = t.column("client_id").to_numpy(zero_copy_only=False)
        idx = np.flatnonzero((ids >= lo) & (ids < hi))
        out = []
        for start in range(0, len(idx), _SLICE):
            take = idx[start:start + _SLICE]
            sub = t.take(take)
            cols = [sub.column(n).to_pylist() if n in sub.column_names else
                    [None] * sub.num_rows for n in schema.names]
            out += [Row(self.line0[table] + int(r), dict(zip(schema.names, vals, strict=True)))
                    for r, vals in zip(take.tolist(), zip(*cols, strict=True), strict=True)]
        return out


def iter_parts(folder: Path) -> Iterator[Part]:
    """The parts of a columnar run in order, with their row numbering across the run."""
    row0, lines = 0, {"clients": 2, "bits": 2}
    for i, _ in enumerate(parts(folder, "events")):
        part = Part(folder, i, row0, lines)
        yield part
        row0 += part.events.num_rows
        for table in lines:
            lines[table] += part.rows_in(table)


def _table_events(table: Any, kinds: dict[str, list[str]]) -> Iterator[dict[str, Any]]:
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    client = cols.get("client")
    for i in range(table.num_rows):
        kind = cols["kind"][i]
        ev: dict[str, Any] = {"t": cols["t"][i], "round": cols["round"][i], "kind": kind}
        for key in kinds.get(kind, []):
            if key == "client":
                if client is not None and client[i] is not None:
                    ev["client"] = client[i]
            else:
                ev[key] = cols[key][i] if key in cols else None
        yield ev


def _part_events(path: Path) -> Iterator[dict[str, Any]]:
    """A part's events as dicts, a slice at a time."""
    table = read_part(path)
    kinds = json.loads((table.schema.metadata or {}).get(_KINDS_KEY, b"{}"))
    for start in range(0, table.num_rows, _SLICE):
        yield from _table_events(table.slice(start, _SLICE), kinds)


def export_text(folder: Path, out: Path) -> list[Path]:
    """Write events.jsonl, clients.csv and bits.csv of a columnar run into ``out``."""
    import csv

    from fedsim.records.schema import fmt

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "events.jsonl", "w", encoding="utf-8") as f:
        for _, ev in iter_event_dicts(folder):
            ev["t"] = round(ev["t"], 9)  # the text log's nanoseconds (engine.core.round_time)
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
    written = [out / "events.jsonl"]
    for table, schema in (("clients", CLIENTS), ("bits", BITS)):
        path = out / schema.file
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(schema.names)
            for row in iter_table_rows(folder, table, schema.names):
                w.writerow([fmt(v) for v in row])
        written.append(path)
    return written
