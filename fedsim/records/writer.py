"""The run folder: written in a hidden temporary folder, renamed into place at the end.

A run that fails (bad input found late, a crash, Ctrl-C) leaves no half-written results
folder behind. Only simulated, deterministic quantities go to the CSV/JSONL files; host
time and memory go to summary.json alone. Columns and cell format come from
:mod:`fedsim.records.schema`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from fedsim.engine.columns import ClientBatch, EventBatch
from fedsim.engine.records import ClientRoundRecord, RoundRecord
from fedsim.records.columnar import ColumnarSink
from fedsim.records.schema import BITS, CLIENTS, RECORD_FILES, ROUNDS, fmt

PARTS = "parts"  # checkpoint offsets: Parquet parts written (columnar layout)


def partial_dir(output: Path, run_id: str) -> Path:
    return output / f".{run_id}.partial"


class RunFolder:
    """Owns one run's output folder.

    ``offsets`` (for resume) truncates each record file to the length it had at the last
    checkpoint and appends from there, so a resumed run writes exactly the bytes an
    uninterrupted run would have.
    """

    def __init__(self, output: Path, run_id: str,
                 offsets: dict[str, int] | None = None, *, columnar: bool = False) -> None:
        self.output = output
        self.run_id = run_id
        self.final = output / run_id
        self.tmp = partial_dir(output, run_id)
        output.mkdir(parents=True, exist_ok=True)
        if offsets is None:
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir()
        else:
            columnar = PARTS in offsets  # a resumed run keeps its layout
            for name in RECORD_FILES:
                if name in offsets:
                    with open(self.tmp / name, "r+b") as f:
                        f.truncate(offsets[name])
        mode = "w" if offsets is None else "a"
        self.columnar = columnar
        self._sink: ColumnarSink | None = None
        self._parts_at = None if offsets is None else offsets.get(PARTS)
        self._rounds = self._csv("rounds.csv", ROUNDS.names, mode)
        self._files = [self._rounds]
        if not columnar:
            self._events = open(self.tmp / "events.jsonl", mode,  # noqa: SIM115
                                encoding="utf-8")
            self._clients = self._csv("clients.csv", CLIENTS.names, mode)
            self._bits = self._csv("bits.csv", BITS.names, mode)
            self._files = [self._events, self._rounds, self._clients, self._bits]
        self.layer_params: list[tuple[str, int]] = []
        self.status_counts: dict[str, int] = {}

    @property
    def sink(self) -> ColumnarSink:
        """The columnar writer (made once the layer table is known)."""
        if self._sink is None:
            self._sink = ColumnarSink(self.tmp, self.layer_params, self._parts_at)
        return self._sink

    def _csv(self, name: str, header: list[str], mode: str) -> io.TextIOWrapper:
        f = open(self.tmp / name, mode, encoding="utf-8", newline="")  # noqa: SIM115
        if mode == "w":
            csv.writer(f, lineterminator="\n").writerow(header)
        return f

    def sync(self) -> dict[str, int]:
        """Flush and fsync the record files; their byte lengths (checkpoint offsets)."""
        out = {}
        for f in self._files:
            f.flush()
            os.fsync(f.fileno())
            out[Path(f.name).name] = f.tell()
        if self.columnar:
            out[PARTS] = self.sink.n
        return out

    @property
    def path(self) -> Path:
        return self.tmp

    # -- observer interface ------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        if self.columnar:
            self.sink.on_event(event)
            return
        self._events.write(json.dumps(event, separators=(",", ":"), sort_keys=False) + "\n")

    def on_events(self, batch: EventBatch) -> None:
        """Many events at once (the vectorised engine)."""
        if self.columnar:
            self.sink.on_events(batch)
            return
        for event in batch.dicts():
            self.on_event(event)

    def on_clients(self, batch: ClientBatch) -> None:
        """Many client records at once (the vectorised engine)."""
        if not self.columnar:
            for rec in batch.records():
                self.on_client(rec)
            return
        for name, n in batch.status_counts().items():
            self.status_counts[name] = self.status_counts.get(name, 0) + n
        self.sink.on_clients(batch)

    def on_client(self, rec: ClientRoundRecord) -> None:
        self.status_counts[rec.status] = self.status_counts.get(rec.status, 0) + 1
        if self.columnar:
            self.sink.on_client(rec)
            return
        row = [fmt(getattr(rec, c)) for c in CLIENTS.names]
        csv.writer(self._clients, lineterminator="\n").writerow(row)
        w = csv.writer(self._bits, lineterminator="\n")
        for i, (layer, params) in enumerate(self.layer_params):
            down = rec.bits_down[i] if i < len(rec.bits_down) else ""
            up = rec.bits_up[i] if i < len(rec.bits_up) else ""
            w.writerow([rec.round, rec.client_id, layer, params, down, up])

    def on_round(self, rec: RoundRecord) -> None:
        row = [fmt(getattr(rec, c)) for c in ROUNDS.names]
        csv.writer(self._rounds, lineterminator="\n").writerow(row)
        if self.columnar:
            self.sink.flush()
        for f in self._files:
            f.flush()

    # -- files ------------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> None:
        (self.tmp / name).write_text(text, encoding="utf-8")

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def close_files(self, *, finished: bool = False) -> None:
        if finished and self.columnar:
            self.sink.flush()  # events after the last round (a stop)
        for f in self._files:
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()

    def _close_quietly(self) -> None:
        """Close the files of a run that stops early: what they still buffer lies past the
        last checkpoint's offsets (a resume truncates it), so a write that fails now (a full
        disk) must not hide why the run stopped."""
        for f in self._files:
            if f.closed:
                continue
            try:
                f.close()
            except OSError:
                with contextlib.suppress(OSError, ValueError):  # ValueError: closed after all
                    os.close(f.fileno())

    def commit(self) -> Path:
        """Publish the run: rename the temporary folder to its final name."""
        self.close_files(finished=True)
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        """Remove everything this run wrote."""
        self._close_quietly()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def suspend(self) -> None:
        """Keep the partial folder (it holds a checkpoint) for ``fedsim run --resume``."""
        self._close_quietly()


def unique_run_id(output: Path, base: str) -> str:
    run_id, i = base, 1
    while (output / run_id).exists() or (output / f".{run_id}.partial").exists():
        i += 1
        run_id = f"{base}-{i}"
    return run_id
