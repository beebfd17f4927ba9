"""clients.csv row by row: energy, phases and status against the events, then the bits.

Each row is matched to the events of the task it records (:mod:`fedsim.verify.events`), so
an energy or a status the writer got wrong shows up as a row that disagrees with what the
engine said while it ran.
"""

from __future__ import annotations

from collections import defaultdict

from fedsim.records.reader import Row
from fedsim.records.schema import OK, PHASES, STATUSES
from fedsim.verify.bits import Budget, Payloads, check_bits
from fedsim.verify.events import (
    CLOSING_EVENTS,
    PHASE_ENDS,
    Event,
    Events,
    Tasks,
    by_client,
    match,
    new_events,
)
from fedsim.verify.report import Checker, close, number, show, where


def check_clients(ck: Checker, clients: list[Row], bits_rows: list[Row], tasks: Tasks,
                  budget: Budget, is_async: bool) -> None:
    """Every clients.csv row against its task's events and its bits.csv rows."""
    bits_of: dict[tuple[int, int], list[Row]] = defaultdict(list)
    for b in bits_rows:
        bits_of[(b["round"], b["client_id"])].append(b)
    client_tasks = by_client(tasks)
    seen: dict[tuple[int, int], Row] = {}
    payloads = Payloads()
    for row in clients:
        key = (row["round"], row["client_id"])
        if not is_async:  # async: a client may report twice in one aggregation
            first = seen.setdefault(key, row)
            if not ck.check(first is row, f"{where(*key)}: two rows in clients.csv (lines "
                            f"{first.line} and {row.line})", *key):
                continue
        task = match(row, tasks, client_tasks)
        check_client(ck, row, task.events if task else new_events(), budget,
                     bits_of.get(key, []), payloads)
    payloads.check(ck)
    # (async: a client's bits.csv rows repeat per record; only unexplained keys count)
    keys = {(row["round"], row["client_id"]) for row in clients} if is_async else set(seen)
    for key in sorted(set(bits_of) - keys):
        ck.check(False, f"{where(*key)}: rows in bits.csv but no row in clients.csv", *key)


def check_client(ck: Checker, row: Row, evs: Events, budget: Budget, brows: list[Row],
                 payloads: Payloads) -> None:
    """One clients.csv row against its events and its bits."""
    r, c = row["round"], row["client_id"]
    phases = [row[f"{p}_j"] for p in (*PHASES, "idle")]
    ck.check(close(row["energy_j"], sum(phases)),
             f"{where(r, c)}: energy_j {show(row['energy_j'])} in clients.csv != "
             f"{show(sum(phases))} = downlink_j+compute_j+uplink_j+idle_j", r, c)
    _check_energy_events(ck, row, evs)
    _check_status(ck, row, evs)
    for p, d in (("downlink", "down"), ("uplink", "up")):
        col = row[f"bits_{d}_payload"]
        for lineno, e in evs.get(f"{p}_end", []):
            ck.check(e.get("payload_bits") == col,
                     f"{where(r, c)}: bits_{d}_payload {col} in clients.csv != "
                     f"{e.get('payload_bits')} in its {p}_end event (events.jsonl line "
                     f"{lineno})", r, c)
    check_bits(ck, row, evs, budget, brows, payloads)


def _check_energy_events(ck: Checker, row: Row, evs: Events) -> None:
    """Each phase's energy against its end event; the total against a closing event."""
    r, c = row["round"], row["client_id"]
    # A closing event other than a phase end (straggler, dropout, offline, battery; any
    # future kind that carries energy) holds the energy so far and the interrupted phase.
    closing = [(n, e) for kind, lst in sorted(evs.items()) if kind not in PHASE_ENDS
               for n, e in lst if "energy_j" in e or "phase" in e]
    interrupted_in = {e.get("phase") for _, e in closing if isinstance(e.get("phase"), str)}
    for p in PHASES:
        ends = evs.get(f"{p}_end", [])
        col = row[f"{p}_j"]
        ck.check(len(ends) <= 1,
                 f"{where(r, c)}: {len(ends)} {p}_end events (lines "
                 f"{', '.join(str(n) for n, _ in ends)})", r, c)
        if ends:
            _check_event_energy(ck, row, f"{p}_j", f"{p}_end", ends[0])
        elif p not in interrupted_in:
            ck.check(close(col, 0.0),
                     f"{where(r, c)}: {p}_j {show(col)} in clients.csv but no {p}_end event "
                     "(and not interrupted in that phase) in events.jsonl", r, c)
    for lineno, e in closing:
        _check_event_energy(ck, row, "energy_j", e["kind"], (lineno, e))


def _check_event_energy(ck: Checker, row: Row, col: str, kind: str,
                        event: Event) -> None:
    """The energy column ``col`` of the row against the energy_j its ``kind`` event carries."""
    r, c = row["round"], row["client_id"]
    lineno, e = event
    ev_e = number(e.get("energy_j"))
    if ck.check(ev_e is not None,
                f"{where(r, c)}: {kind} event (events.jsonl line {lineno}) has no "
                "energy_j number", r, c):
        assert ev_e is not None
        ck.check(close(row[col], ev_e),
                 f"{where(r, c)}: {col} {show(row[col])} in clients.csv != "
                 f"{show(ev_e)} in its {kind} event (events.jsonl line {lineno})", r, c)


def _check_status(ck: Checker, row: Row, evs: Events) -> None:
    """The status agrees with the events: ok ended all phases, others have their event."""
    r, c = row["round"], row["client_id"]
    status = row["status"]
    if status == OK:
        lacking = [f"{p}_end" for p in PHASES if not evs.get(f"{p}_end")]
        ck.check(not lacking,
                 f"{where(r, c)}: status ok but no {', '.join(lacking)} event in "
                 "events.jsonl", r, c)
    elif status in STATUSES:
        kinds = sorted(k for k, s in CLOSING_EVENTS.items() if s == status)
        ck.check(any(evs.get(k) for k in kinds),
                 f"{where(r, c)}: status {status} but no {' or '.join(kinds)} event in "
                 "events.jsonl", r, c)
    for kind, implied in CLOSING_EVENTS.items():
        if evs.get(kind):
            ck.check(status == implied,
                     f"{where(r, c)}: {kind} event (events.jsonl line {evs[kind][0][0]}) but "
                     f"status '{status}' in clients.csv", r, c)

