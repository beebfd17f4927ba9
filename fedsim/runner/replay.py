"""Resuming asynchronous (FedBuff) runs by replay: byte-identical, without retraining.

Why replay: when an async run is checkpointed, clients are in the middle of their phases,
SimPy holds their processes, failure timers and departures, and events due at the same
instant are ordered by when they were scheduled. Rebuilding that state by hand would be
fragile and could reorder ties. Instead a live async run logs, in every checkpoint, what
the engine learnt from the outside world: the downlink bits the method chose, each
consumed task's result (bits sent up, samples, loss) and each version's evaluation; and,
for the tasks not yet aggregated, their updates and the model each trained from.

``fedsim run --resume`` then runs the engine from the start against :class:`ReplayPort`,
which answers from the log (no training, nothing written: :class:`ReplayGate` drops the
records, which the run folder already holds up to the checkpoint's offsets). Right after
the checkpointed version closes, the port goes live: the method's state is the checkpoint's,
the pending tasks' updates are handed to the real port, and the run continues exactly as
the uninterrupted one did, because the engine's whole state was rebuilt by the same code
from the same inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.engine.types import EvalResult, WorkItem, WorkResult

Key = tuple[int, int, int]


def _k(key: Key) -> str:
    return "/".join(map(str, key))


#: the replay log of an async run, beside its checkpoint (removed when the run ends)
LOG_FILE = "replay.jsonl"


@dataclass
class ReplayLog:
    """What an async run learnt from outside the engine, in order (plain values).

    Entries are appended to ``replay.jsonl`` as they happen, one JSON line each, and the
    checkpoint records the file's length: saving a checkpoint then costs what happened
    since the last one, not the whole history again (a 1,000-version run would otherwise
    rewrite its log 1,000 times)."""

    bits: list[dict[int, list[int]]] = field(default_factory=list)  # downlink answers
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # "r/c/a" -> result
    evals: list[dict[str, Any]] = field(default_factory=list)  # per version
    sink: Any = None  # the open log file

    def add_bits(self, answer: dict[int, list[int]]) -> None:
        self.bits.append(answer)
        self._write(["b", {str(c): b for c, b in answer.items()}])

    def add_result(self, key: str, result: dict[str, Any]) -> None:
        if key not in self.results:
            self.results[key] = result
            self._write(["r", key, result])

    def add_eval(self, ev: dict[str, Any]) -> None:
        self.evals.append(ev)
        self._write(["e", ev])

    def _write(self, entry: list[Any]) -> None:
        if self.sink is not None:
            self.sink.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def sync(self) -> int:
        """Flush and fsync the log; its length (what a checkpoint records)."""
        if self.sink is None:
            return 0
        self.sink.flush()
        os.fsync(self.sink.fileno())
        return int(self.sink.tell())

    @classmethod
    def open(cls, path: Path, upto: int | None) -> ReplayLog:
        """A new log at ``path``, or (resuming) the one there cut to ``upto`` bytes."""
        log = cls()
        if upto is None:
            log.sink = open(path, "w", encoding="utf-8")  # noqa: SIM115
            return log
        if not path.is_file():
            from fedsim.errors import InputError

            raise InputError("the async run's replay log is missing: it cannot be resumed",
                             file=path)
        with open(path, "r+b") as f:
            f.truncate(upto)
        with open(path, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if entry[0] == "b":
                    log.bits.append({int(c): b for c, b in entry[1].items()})
                elif entry[0] == "r":
                    log.results[entry[1]] = entry[2]
                else:
                    log.evals.append(entry[1])
        log.sink = open(path, "a", encoding="utf-8")  # noqa: SIM115
        return log

    def close(self) -> None:
        if self.sink is not None and not self.sink.closed:
            self.sink.close()


def _result_dict(r: WorkResult) -> dict[str, Any]:
    return {"round": r.round, "client_id": r.client_id, "bits_up": list(r.bits_up),
            "samples": r.samples, "train_loss": r.train_loss, "metrics": dict(r.metrics)}


def _result(d: dict[str, Any]) -> WorkResult:
    return WorkResult(d["round"], d["client_id"], tuple(d["bits_up"]), d["samples"],
                      d["train_loss"], dict(d["metrics"]))


class _LoggedHandle:
    """A live handle whose result is logged when the engine takes it."""

    def __init__(self, handle: Any, key: Key, log: ReplayLog) -> None:
        self.handle, self.key, self.log = handle, key, log

    def result(self) -> WorkResult:
        res: WorkResult = self.handle.result()
        self.log.add_result(_k(self.key), _result_dict(res))
        return res

    def cancel(self) -> bool:
        return bool(getattr(self.handle, "cancel", lambda: False)())


class RecordingPort:
    """Wraps a live port of an async run and keeps the :class:`ReplayLog`."""

    def __init__(self, inner: Any, log: ReplayLog | None = None) -> None:
        self.inner = inner
        self.log = log or ReplayLog()
        self.open: dict[Key, _LoggedHandle] = {}  # submitted, not yet aggregated or discarded

    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        bits = self.inner.downlink_bits(round, client_ids)
        self.log.add_bits({c: list(bits[c]) for c in client_ids})
        return bits  # type: ignore[no-any-return]

    def submit(self, item: WorkItem) -> _LoggedHandle:
        handle = _LoggedHandle(self.inner.submit(item), item.key, self.log)
        self.open[item.key] = handle
        return handle

    def discard(self, key: Key) -> None:
        self.open.pop(key, None)
        self.inner.discard(key)

    def aggregate(self, round: int, keys: Sequence[Key]) -> None:
        for k in keys:
            self.open.pop(k, None)
        self.inner.aggregate(round, keys)

    def aggregate_async(self, round: int, keys: Sequence[Key], staleness: Sequence[int]) -> None:
        for k in keys:
            self.open.pop(k, None)
        self.inner.aggregate_async(round, keys, staleness)

    def evaluate(self, round: int) -> EvalResult:
        ev: EvalResult = self.inner.evaluate(round)
        self.log.add_eval({"accuracy": ev.accuracy, "loss": ev.loss,
                           "metrics": dict(ev.metrics)})
        return ev

    def set_budget(self, client_id: int, budget_bits: float) -> None:
        self.inner.set_budget(client_id, budget_bits)

    def checkpoint_state(self) -> dict[str, Any]:
        """The log's length (synced), and every open task's result (trained now if it was
        still running: the same result it would give later) with its update and base model
        when the port keeps them (real training)."""
        for handle in self.open.values():
            handle.handle.result()
        export = getattr(self.inner, "export_tasks", None)
        tasks = export(list(self.open)) if export is not None else {}
        return {"log_bytes": self.log.sync(),
                "tasks": {_k(k): v for k, v in tasks.items()},
                "open": {_k(k): _result_dict(h.handle.result()) for k, h in self.open.items()}}


class _ReplayHandle:
    """A task submitted during the replay: its result comes from the checkpoint (and is
    logged again when taken, so the next checkpoint's log has it too)."""

    def __init__(self, result: WorkResult | None, key: Key, log: ReplayLog) -> None:
        self._result, self.key, self.log = result, key, log

    def result(self) -> WorkResult:
        assert self._result is not None, f"replay: task {self.key} has no recorded result"
        self.log.add_result(_k(self.key), _result_dict(self._result))
        return self._result

    def cancel(self) -> bool:
        return False


class ReplayPort:
    """Answers the engine from a checkpoint's log until :meth:`go_live`, then passes
    everything to the live (recording) port."""

    def __init__(self, live: RecordingPort, saved: dict[str, Any]) -> None:
        self.live = live
        self.log = live.log  # the live port continues the same log
        self.tasks = saved.get("tasks", {})
        self.open_results = saved.get("open", {})
        self.replaying = True
        self._bits_at = 0
        self._evals_at = 0
        self._handles: dict[Key, _ReplayHandle] = {}

    def go_live(self) -> None:
        """The checkpointed version has closed: hand the open tasks to the live port."""
        self.replaying = False
        restore = getattr(self.live.inner, "import_tasks", None)
        if restore is not None:
            restore({tuple(map(int, k.split("/"))): v for k, v in self.tasks.items()})
        for key, handle in self._handles.items():  # still open: the live port owns them now
            self.live.open[key] = _LoggedHandle(handle, key, self.log)
        self._handles.clear()

    # -- the port ----------------------------------------------------------------------------
    def downlink_bits(self, round: int, client_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        if not self.replaying:
            return self.live.downlink_bits(round, client_ids)
        answer = self.log.bits[self._bits_at]
        self._bits_at += 1
        assert sorted(answer) == sorted(client_ids), "replay diverged: other clients chosen"
        return {c: tuple(answer[c]) for c in client_ids}

    def submit(self, item: WorkItem) -> Any:
        if not self.replaying:
            return self.live.submit(item)
        saved = self.log.results.get(_k(item.key)) or self.open_results.get(_k(item.key))
        handle = _ReplayHandle(_result(saved) if saved else None, item.key, self.log)
        self._handles[item.key] = handle
        return handle

    def discard(self, key: Key) -> None:
        self._handles.pop(key, None)
        if not self.replaying:
            self.live.discard(key)

    def aggregate(self, round: int, keys: Sequence[Key]) -> None:
        self._forget(keys)
        if not self.replaying:
            self.live.aggregate(round, keys)

    def aggregate_async(self, round: int, keys: Sequence[Key], staleness: Sequence[int]) -> None:
        self._forget(keys)
        if not self.replaying:
            self.live.aggregate_async(round, keys, staleness)

    def _forget(self, keys: Sequence[Key]) -> None:
        for k in keys:
            self._handles.pop(k, None)

    def evaluate(self, round: int) -> EvalResult:
        if not self.replaying:
            return self.live.evaluate(round)
        ev = self.log.evals[self._evals_at]
        self._evals_at += 1
        return EvalResult(ev["accuracy"], ev["loss"], dict(ev["metrics"]))

    def set_budget(self, client_id: int, budget_bits: float) -> None:
        self.live.set_budget(client_id, budget_bits)


class ReplayGate:
    """The observer during a replay: drops everything (the run folder holds it) until the
    checkpointed version's round record, then switches the port live and passes on."""

    def __init__(self, inner: Any, port: ReplayPort, last_round: int) -> None:
        self.inner, self.port, self.last_round = inner, port, last_round
        self.live = False

    def on_event(self, event: dict[str, Any]) -> None:
        if self.live:
            self.inner.on_event(event)

    def on_client(self, rec: Any) -> None:
        if self.live:
            self.inner.on_client(rec)

    def on_round(self, rec: Any) -> None:
        if self.live:
            self.inner.on_round(rec)
        elif rec.round == self.last_round:
            self.port.go_live()
            self.live = True
