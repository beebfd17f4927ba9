"""events.jsonl as tasks: each client's work on one model version, to pair with its row.

A clients.csv row says what happened to a client; the events say it again, phase by phase.
To compare the two, the client events are grouped into tasks (one client, one model
version) and every row is matched to the task it records. Tasks no row claims are either
still in flight when an async run ended (``stale``: a note) or a violation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fedsim.records.reader import Row
from fedsim.records.schema import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    PHASES,
    STALE,
    STRAGGLER,
)
from fedsim.verify.report import Checker, number, show, where

#: event kinds that say why a client did not report -> the status they imply
CLOSING_EVENTS = {STRAGGLER: STRAGGLER, INFEASIBLE: INFEASIBLE, DROPOUT: DROPOUT,
                  OFFLINE: OFFLINE, BATTERY: BATTERY, "battery_low": BATTERY, STALE: STALE}
PHASE_ENDS = tuple(f"{p}_end" for p in PHASES)

#: an event with its events.jsonl line
Event = tuple[int, dict[str, Any]]
EventLines = list[Event]
#: event kind -> its (line, event) pairs
Events = dict[str, EventLines]
Tasks = dict[tuple[int, int], list["Task"]]


def new_events() -> Events:
    return defaultdict(list)


@dataclass
class Task:
    """One client's work on one model version: its events, dispatch to report or abort."""

    version: int
    client: int
    events: Events = field(default_factory=new_events)
    matched: bool = False

    def outcome(self) -> str | None:
        """The status the events imply (None: unknown closing event or unfinished work)."""
        for kind, status in CLOSING_EVENTS.items():
            if self.events.get(kind):
                return status
        return OK if self.events.get("uplink_end") else None

    def energy_j(self) -> float:
        """Energy the events account for (used only to pair rows with tasks)."""
        for kind in CLOSING_EVENTS:
            for _, e in self.events.get(kind, []):
                v = number(e.get("energy_j"))
                if v is not None:
                    return v
        return sum(number(e.get("energy_j")) or 0.0
                   for kind in PHASE_ENDS for _, e in self.events.get(kind, []))

    def first_line(self) -> int:
        return min(n for lst in self.events.values() for n, _ in lst)


def check_time(ck: Checker, events: EventLines) -> None:
    """Simulated time never goes backwards in events.jsonl."""
    prev_line, prev_t = 0, -math.inf
    for lineno, ev in events:
        t = float(ev["t"])
        ck.check(t >= prev_t,
                 f"events.jsonl line {lineno} ({ev['kind']}, round {ev['round']}"
                 f"{', client ' + str(ev['client']) if 'client' in ev else ''}) at t={show(t)} s "
                 f"is earlier than line {prev_line} at t={show(prev_t)} s: simulated time went "
                 "backwards", ev["round"], ev.get("client"))
        if t > prev_t or not prev_line:
            prev_line, prev_t = lineno, max(t, prev_t)


def index_events(events: EventLines, is_async: bool) -> tuple[Tasks, dict[int, Events]]:
    """Client events grouped into tasks (by version and client), server events by round."""
    tasks: Tasks = defaultdict(list)
    rounds: dict[int, Events] = defaultdict(new_events)
    current: dict[int, Task] = {}
    for lineno, ev in events:
        kind, r = ev["kind"], ev["round"]
        if kind == "stopped":  # the run ended early: no round follows
            continue
        if kind == "battery_wait" and not is_async:
            # nobody selected could pay round r: the round is retried from scratch and this
            # attempt left no records, so its events do not count
            rounds.pop(r, None)
            for key in [k for k in tasks if k[0] == r]:
                del tasks[key]
            continue
        if "client" not in ev:
            rounds[r][kind].append((lineno, ev))
            continue
        task = _task_of(tasks, current, kind, r, ev["client"], is_async)
        task.events[kind].append((lineno, ev))
    return tasks, rounds


def _task_of(tasks: Tasks, current: dict[int, Task], kind: str, r: int, c: int,
             is_async: bool) -> Task:
    """The task a client event of round ``r`` belongs to, opened if it is the first."""
    if is_async:  # a client works on one task at a time; "dispatch" starts the next
        task = current.get(c)
        if kind == "dispatch" or task is None or task.version != r:
            task = Task(r, c)
            tasks[(r, c)].append(task)
            current[c] = task
        return task
    found = tasks[(r, c)]
    if not found:
        found.append(Task(r, c))
    return found[0]


def by_client(tasks: Tasks) -> dict[int, list[Task]]:
    """Each client's tasks, oldest version first (for rows that carry no usable version)."""
    out: dict[int, list[Task]] = defaultdict(list)
    for (_, c), found in sorted(tasks.items()):
        out[c].extend(found)
    return out


def match(row: Row, tasks: Tasks, client_tasks: dict[int, list[Task]]) -> Task | None:
    """The task a clients.csv row records: same client, dispatched at round - staleness.

    Failing that (async records cut by the end of the run carry the last version and no
    staleness), the client's unmatched task of an earlier version with the same outcome.
    """
    version = row["round"] - (row.values.get("staleness") or 0)
    status = row["status"]
    free = [t for t in tasks.get((version, row["client_id"]), []) if not t.matched]
    if not free:
        free = [t for t in client_tasks.get(row["client_id"], [])
                if not t.matched and t.version <= row["round"] and t.outcome() == status]
        free = free[-1:]  # the latest such task
    if not free:
        return None
    fit = ([t for t in free if t.outcome() == status]
           or [t for t in free if t.outcome() is None] or free)
    energy = row["energy_j"]
    best = min(fit, key=lambda t: abs(t.energy_j() - energy) if math.isfinite(energy) else 0)
    best.matched = True
    return best


def check_unmatched(ck: Checker, tasks: Tasks) -> None:
    """Tasks no clients.csv row claimed: a violation, unless still in flight at the end."""
    stale_j, stale_n = 0.0, 0
    for (v, c), found in sorted(tasks.items()):
        for t in found:
            if t.matched:
                continue
            if t.outcome() == STALE:
                stale_n += 1
                stale_j += t.energy_j()
                continue
            ck.check(False, f"{where(v, c)}: events.jsonl has "
                     f"{', '.join(sorted(t.events))} event(s) (from line {t.first_line()}) "
                     "but clients.csv has no row for them", v, c)
    if stale_n:
        ck.report.notes.append(
            f"{stale_n} task(s) still running when the run ended (stale events) have no "
            f"clients.csv row; their {show(stale_j)} J are in no energy total")
