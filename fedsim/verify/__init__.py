"""Check a finished run folder against the engine's invariants (``fedsim verify RUN_DIR``).

Everything is recomputed from the files alone (``events.jsonl``, ``rounds.csv``,
``clients.csv``, ``bits.csv``, ``scenario.yaml``, ``summary.json``); nothing is re-run and
torch is never imported. What is checked:

* simulated time never goes backwards in ``events.jsonl``;
* a client-round's ``energy_j`` is the sum of its phases (``downlink_j + compute_j +
  uplink_j + idle_j``); each phase that ended has an event carrying the same energy; a
  phase without an end event spent nothing unless the client was interrupted in it (its
  closing event -- ``straggler``, ``dropout``, ``offline``, ``battery`` -- then carries the
  client's whole energy); idle energy is only in ``clients.csv``; the status agrees with
  the events (``ok``: all three phases ended; otherwise the event of that name);
* a round's ``round_energy_j`` is the sum over its clients, ``energy_j`` is the running
  sum, ``sim_time_s`` is the ``round_end`` event's time and ``round_s`` its length;
* ``participants`` / ``stragglers`` / ``infeasible`` / ``dropouts`` / ``offline`` /
  ``battery`` / ``selected`` agree with the client statuses, the ``round_start`` selection
  and the ``aggregate`` event (clients with status ``ok`` exactly); a status this module
  does not know counts as a non-participant;
* payloads match the bits: ``bits_*_payload`` equals the payload computed from ``bits.csv``
  (:func:`fedsim.payload.layer_payload_bits` per layer) plus the model's float state, which
  must be one constant for every row and direction; every ``downlink_end`` /
  ``uplink_end`` event carries the ``clients.csv`` payload; ``avg_bits`` /
  ``avg_bits_up`` are the parameter-weighted averages of the bits;
* budgets: for budget-bound methods (fedmpq, aqfl) the downlink's weighted average bits
  stay within ``budget_bits`` (fedmpq with ``allocation: reference``, the authors' rule,
  may end one layer's share above it: its growth stops only once the budget is reached);
  for fedpaq / uveqfed every uplink layer stays within ``floor(budget_bits)``; fpq8, fedavg
  and fedprox ignore budgets;
* ``summary.json`` totals agree with ``rounds.csv``.

Synchronous runs group ``clients.csv`` by its ``round`` column. Asynchronous (FedBuff) runs
write each aggregation's records just before its ``rounds.csv`` row, so rows are grouped by
``selected`` in file order; a row's task is found by its dispatch version (``round -
staleness``). A synchronous round retried after ``battery_wait`` keeps only its last
attempt's events. Tasks still in flight when an async run ends (``stale`` events) are not
in ``clients.csv``: they are reported as notes, not violations.

A file that cannot be read as a run folder is an :class:`~fedsim.errors.InputError` (the
CLI exits 2); broken invariants are returned as numbered :class:`Violation` messages (the
CLI exits 1).

The checks live by what they read: :mod:`~fedsim.verify.events` (events into per-client
tasks, rows matched to them), :mod:`~fedsim.verify.clients` (one clients.csv row),
:mod:`~fedsim.verify.bits` (bits, budgets, payloads), :mod:`~fedsim.verify.rounds`
(rounds.csv and summary.json) and :mod:`~fedsim.verify.report` (the report itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import InputError
from fedsim.records.columnar import is_columnar
from fedsim.records.reader import Row, iter_events, read_mapping, read_rows, run_files_present
from fedsim.records.schema import BITS, CLIENTS, ROUNDS, RUN_FILES
from fedsim.verify.bits import Budget
from fedsim.verify.clients import check_clients
from fedsim.verify.events import check_time, check_unmatched, index_events
from fedsim.verify.report import Checker, VerifyReport, Violation, show
from fedsim.verify.rounds import check_rounds, check_summary

__all__ = ["RUN_FILES", "VerifyReport", "Violation", "verify_run"]


def verify_run(run_dir: str | Path) -> VerifyReport:
    """Check every invariant of the run folder ``run_dir``; InputError if it is not one."""
    path = Path(run_dir)
    _require_run_folder(path)
    scenario = read_mapping(path / "scenario.yaml", "scenario")
    summary = read_mapping(path / "summary.json", "summary")
    if is_columnar(path) and scenario.get("mode") != "async":
        # (an async task's events span several versions, so async Parquet runs are read
        # whole, through the same reader as text runs)
        return _verify_parts(path, scenario, summary)
    events = list(iter_events(path / "events.jsonl"))
    rounds = read_rows(path / "rounds.csv", ROUNDS)
    clients = read_rows(path / "clients.csv", CLIENTS)
    bits_rows = read_rows(path / "bits.csv", BITS)
    is_async = scenario.get("mode") == "async"

    report = VerifyReport(path=path, rounds=len(rounds), client_rounds=len(clients))
    ck = Checker(report)
    # the order below is the order violations are numbered in
    check_time(ck, events)
    tasks, round_events = index_events(events, is_async)
    check_clients(ck, clients, bits_rows, tasks, Budget.of(scenario), is_async)
    check_unmatched(ck, tasks)
    check_rounds(ck, rounds, clients, round_events, is_async)
    check_summary(ck, summary, rounds)
    _note_inputs(report, path)
    return report


#: clients per slice of a round when a columnar run is verified (memory stays bounded)
CHUNK = 50_000
#: time violations spelled out per part (the rest are counted)
MAX_TIME_MESSAGES = 50
#: the columns the round checks read from each client row
_ROUND_COLUMNS = ("round", "client_id", "status", "energy_j", "staleness")


def _verify_parts(path: Path, scenario: dict, summary: dict) -> VerifyReport:
    """A columnar run one part (one round's records) at a time, and each round in slices of
    ``CHUNK`` clients: a client's rows and events are always in the same slice, so the
    per-client checks are the text run's; the round checks see every client's status and
    energy. Memory holds one round's Arrow tables, a slice's Python rows and a small row per
    client of the round for the round checks (about 1 GB for a round of 10^6 clients), not
    the run. Synchronous runs only: an async task spans versions."""
    from fedsim.records.columnar import iter_parts

    rounds = read_rows(path / "rounds.csv", ROUNDS)
    by_round = {row["round"]: row for row in rounds}
    is_async = scenario.get("mode") == "async"
    report = VerifyReport(path=path, rounds=len(rounds), client_rounds=0)
    ck = Checker(report)
    budget = Budget.of(scenario)
    latest = -np.inf
    prev, prev_end = None, None
    for part in iter_parts(path):
        report.client_rounds += part.rows_in("clients")
        server = part.event_dicts(~part.has_client)
        latest = _check_time_columns(ck, part, latest)
        client_ids = part.client[part.has_client].astype(np.int64)
        row_ids = [part.tables[t].column("client_id").to_numpy(zero_copy_only=False)
                   for t in ("clients", "bits") if part.tables[t] is not None]
        top = max([int(a.max()) for a in (client_ids, *row_ids) if len(a)], default=-1)
        retried = _retried_attempts(server, part, is_async)
        round_rows = []
        for lo in range(0, top + 1, CHUNK):
            hi = lo + CHUNK
            ids = np.where(part.has_client, part.client, -1).astype(np.int64)
            events = part.event_dicts((ids >= lo) & (ids < hi) & ~retried)
            clients = part.rows("clients", CLIENTS, lo, hi)
            bits_rows = part.rows("bits", BITS, lo, hi)
            tasks, _ = index_events(events, is_async)
            check_clients(ck, clients, bits_rows, tasks, budget, is_async)
            check_unmatched(ck, tasks)
            round_rows += [Row(r.line, {k: r.values[k] for k in _ROUND_COLUMNS
                                        if k in r.values}) for r in clients]
        round_rows.sort(key=lambda r: r.line)
        _, round_events = index_events(server, is_async)
        seen = sorted({r["round"] for r in round_rows} | set(round_events))
        prev, prev_end = check_rounds(ck, [by_round[r] for r in seen if r in by_round],
                                      round_rows, round_events, is_async, prev=prev,
                                      prev_end=prev_end)
    check_summary(ck, summary, rounds)
    _note_inputs(report, path)
    return report


def _retried_attempts(server: list, part: Any, is_async: bool) -> np.ndarray:
    """Event rows of a round attempt that nobody could pay (a ``battery_wait``): the
    round was tried again and that attempt left no records (as ``index_events`` drops)."""
    drop = np.zeros(part.events.num_rows, dtype=bool)
    if is_async:
        return drop
    rounds = part.events.column("round").to_numpy(zero_copy_only=False)
    rows = np.arange(part.events.num_rows) + part.event_row0 + 1
    for row, ev in server:
        if ev["kind"] == "battery_wait":
            drop |= (rounds == ev["round"]) & (rows < row) & part.has_client
    return drop


def _check_time_columns(ck: Checker, part: Any, before: float) -> float:
    """Simulated time never goes backwards, checked on the column (one check per event);
    only the events that break it are turned into dicts, for the message. Returns the
    latest time seen."""
    t = part.events.column("t").to_numpy(zero_copy_only=False)
    running = np.maximum.accumulate(np.concatenate([[before], t]))
    # client events keep full precision, the server's are rounded to the nanosecond (as
    # in the text log): a nanosecond is the resolution
    bad = np.flatnonzero(t < running[:-1] - 1e-9)
    ck.report.checks += len(t)
    shown = bad[:MAX_TIME_MESSAGES]
    for (row, ev), latest in zip(part.event_dicts(np.isin(np.arange(len(t)), shown)),
                                 running[shown].tolist(), strict=True):
        client = f", client {ev['client']}" if "client" in ev else ""
        ck.report.violations.append(Violation(
            f"events row {row} ({ev['kind']}, round {ev['round']}{client}) at "
            f"t={show(float(ev['t']))} s is earlier than an event before it at "
            f"t={show(latest)} s: simulated time went backwards", ev["round"],
            ev.get("client")))
    if len(bad) > len(shown):
        ck.report.violations.append(Violation(
            f"... and {len(bad) - len(shown)} more events earlier than one before them"))
    return float(running[-1])


def _note_inputs(report: VerifyReport, path: Path) -> None:
    """The run's input fingerprints, rechecked: a note (not a violation) for each file that
    changed since the run, since the run's own files are what verify checks."""
    from fedsim.records.fingerprints import changed

    meta = path / "run.json"
    if not meta.is_file():
        return
    inputs = read_mapping(meta, "the run's provenance").get("inputs")
    if not isinstance(inputs, list):
        return
    diffs = changed(inputs)
    report.notes.append(f"inputs: {len(inputs)} files fingerprinted in run.json, "
                        + ("all unchanged" if not diffs else f"{len(diffs)} changed since"))
    report.notes += [f"input {d}" for d in diffs]


def _require_run_folder(path: Path) -> None:
    """An InputError (the CLI exits 2) unless ``path`` holds every file of a run folder."""
    if not path.exists():
        raise InputError("no such run folder", file=path)
    if not path.is_dir():
        raise InputError("expected a run folder (a directory written by `fedsim run`)",
                         file=path)
    present = run_files_present(path)
    missing = [f for f in RUN_FILES if f not in present]
    if len(missing) == len(RUN_FILES):
        raise InputError(f"not a run folder (a run folder has {', '.join(RUN_FILES)})",
                         file=path)
    if missing:
        raise InputError(f"incomplete run folder: missing {', '.join(missing)}", file=path)
