"""rounds.csv and summary.json: each round against its clients' rows and its server events.

A round's row is a summary of its clients (energy, counts by status) and of the server's
events (selection, aggregation, end time); recomputing it from those catches a round total
that no longer adds up, and the summary totals are rechecked from the rounds in turn.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fedsim.records.reader import Row
from fedsim.records.schema import OK, STATUS_COLUMNS, STATUSES
from fedsim.verify.events import Event, Events, new_events
from fedsim.verify.report import ABS_TOL_J, ABS_TOL_S, Checker, close, ids, number, show, where


def check_rounds(ck: Checker, rounds: list[Row], clients: list[Row],
                 round_events: dict[int, Events], is_async: bool, *,
                 prev: Row | None = None,
                 prev_end: float | None = None) -> tuple[Row | None, float | None]:
    """Every rounds.csv row, then rounds that clients.csv or events.jsonl has and it lacks.

    ``prev`` / ``prev_end`` carry the round before ``rounds`` (a columnar run is checked
    part by part); the last round's row and end time are returned for the next call."""
    groups = group_rows(ck, rounds, clients, is_async)
    seen_rounds: set[int] = set()
    for row, rows in zip(rounds, groups, strict=True):
        r = row["round"]
        if not ck.check(r not in seen_rounds, f"round {r}: two rows in rounds.csv", r):
            continue
        seen_rounds.add(r)
        check_round(ck, row, rows, prev, round_events.get(r, new_events()), is_async, prev_end)
        ends = round_events.get(r, {}).get("round_end", [])
        prev, prev_end = row, (float(ends[0][1]["t"]) if ends else None)

    if not is_async:
        for r in sorted({row["round"] for row in clients} - seen_rounds):
            ck.check(False, f"round {r}: clients.csv has rows but rounds.csv has no row", r)
    for r in sorted(set(round_events) - seen_rounds):
        ck.check(False, f"round {r}: events.jsonl has "
                 f"{', '.join(sorted(round_events[r]))} event(s) but rounds.csv has no row", r)
    return prev, prev_end


def group_rows(ck: Checker, rounds: list[Row], clients: list[Row],
               is_async: bool) -> list[list[Row]]:
    """The clients.csv rows recorded with each rounds.csv row."""
    if is_async:
        total = sum(max(0, row["selected"]) for row in rounds)
        if ck.check(total == len(clients),
                    f"rounds.csv 'selected' adds up to {total} but clients.csv has "
                    f"{len(clients)} rows: async rows cannot be assigned to aggregations"):
            groups, at = [], 0
            for row in rounds:
                groups.append(clients[at:at + row["selected"]])
                at += row["selected"]
            return groups
    by_round: dict[int, list[Row]] = {}
    for row in clients:
        by_round.setdefault(row["round"], []).append(row)
    return [by_round.get(row["round"], []) for row in rounds]


def check_round(ck: Checker, row: Row, rows: list[Row], prev: Row | None,
                revs: Events, is_async: bool, prev_end: float | None) -> None:
    """One rounds.csv row against its clients' rows and the round's events."""
    r = row["round"]
    ok_ids = sorted(x["client_id"] for x in rows if x["status"] == OK)
    _check_energy(ck, row, rows, prev)
    _check_counts(ck, row, rows, ok_ids)
    if is_async:
        _check_async_rows(ck, r, rows)

    starts, ends, aggs = (revs.get("round_start", []), revs.get("round_end", []),
                          revs.get("aggregate", []))
    expected = (("round_end", ends), ("aggregate", aggs))
    if not is_async:  # async versions have no round_start
        expected = (("round_start", starts), *expected)
    for kind, found in expected:
        ck.check(len(found) == 1,
                 f"round {r}: {len(found)} {kind} events in events.jsonl (expected 1)", r)
    if starts and not is_async:
        sel = starts[0][1].get("selected")
        client_ids = sorted(x["client_id"] for x in rows)
        ck.check(ids(sel) == client_ids,
                 f"round {r}: round_start selected {sel} (events.jsonl line "
                 f"{starts[0][0]}) != clients {client_ids} in clients.csv", r)
    if aggs:
        _check_aggregate(ck, r, aggs[0], rows, ok_ids)
    if ends:
        t0 = (float(starts[0][1]["t"]) if starts and not is_async
              else prev_end if prev is not None else 0.0 if r == 0 else None)
        _check_end(ck, row, ends[0], t0)


def _check_energy(ck: Checker, row: Row, rows: list[Row], prev: Row | None) -> None:
    """The round's energy is its clients' sum; the cumulative energy is the running sum."""
    r = row["round"]
    fleet = sum(x["energy_j"] for x in rows)
    ck.check(close(row["round_energy_j"], fleet),
             f"round {r}: round_energy_j {show(row['round_energy_j'])} in rounds.csv != "
             f"{show(fleet)} = sum of its {len(rows)} clients' energy_j in clients.csv", r)
    if prev is not None:
        expect = prev["energy_j"] + row["round_energy_j"]
        ck.check(close(row["energy_j"], expect),
                 f"round {r}: cumulative energy_j {show(row['energy_j'])} in rounds.csv != "
                 f"{show(expect)} = previous energy_j {show(prev['energy_j'])} + "
                 f"round_energy_j {show(row['round_energy_j'])}", r)
    elif r == 0:
        ck.check(close(row["energy_j"], row["round_energy_j"]),
                 f"round 0: cumulative energy_j {show(row['energy_j'])} in rounds.csv != "
                 f"round_energy_j {show(row['round_energy_j'])}", r)


def _check_counts(ck: Checker, row: Row, rows: list[Row], ok_ids: list[int]) -> None:
    """participants, selected and the per-status columns count the clients' statuses."""
    r = row["round"]
    statuses = Counter(x["status"] for x in rows)
    unknown = sum(n for s, n in statuses.items() if s not in STATUSES)
    ck.check(row["participants"] == len(ok_ids),
             f"round {r}: participants {row['participants']} in rounds.csv != "
             f"{len(ok_ids)} clients with status ok in clients.csv", r)
    ck.check(row["selected"] == len(rows),
             f"round {r}: selected {row['selected']} in rounds.csv != {len(rows)} rows in "
             "clients.csv", r)
    for col, status in STATUS_COLUMNS.items():
        if col not in row.values:
            continue
        n = statuses.get(status, 0)
        # statuses this version does not know may be counted in any column
        good = n <= row[col] <= n + unknown if unknown else row[col] == n
        ck.check(good, f"round {r}: {col} {row[col]} in rounds.csv != {n} clients with "
                 f"status {status} in clients.csv", r)


def _check_async_rows(ck: Checker, r: int, rows: list[Row]) -> None:
    """Async: an aggregation holds its own reports and losses from it or earlier."""
    for x in rows:
        ok_round = x["round"] == r if x["status"] == OK else x["round"] <= r
        ck.check(ok_round, f"{where(x['round'], x['client_id'])}: recorded with "
                 f"aggregation {r} (clients.csv line {x.line}) but its round is "
                 f"{'not ' if x['status'] == OK else 'after '}{r}", x["round"],
                 x["client_id"])


def _check_aggregate(ck: Checker, r: int, event: Event, rows: list[Row],
                     ok_ids: list[int]) -> None:
    """The aggregate event names the clients with status ok (and their staleness)."""
    lineno, agg = event
    ck.check(ids(agg.get("clients")) == ok_ids,
             f"round {r}: aggregate event clients {agg.get('clients')} (events.jsonl "
             f"line {lineno}) != clients with status ok {ok_ids} in clients.csv", r)
    if "staleness" not in agg:
        return
    clients, stale = agg.get("clients"), agg.get("staleness")
    pairs = (sorted(zip(clients, stale, strict=True))
             if isinstance(clients, list) and isinstance(stale, list)
             and len(clients) == len(stale) and ids(stale) is not None
             and ids(clients) is not None else None)
    want = sorted((x["client_id"], x.values.get("staleness", 0))
                  for x in rows if x["status"] == OK)
    ck.check(pairs == want,
             f"round {r}: aggregate event (client, staleness) pairs "
             f"{pairs if pairs is not None else stale} (events.jsonl line {lineno}) "
             f"!= {want} in clients.csv", r)


def _check_end(ck: Checker, row: Row, event: Event, t0: float | None) -> None:
    """The round_end event's time, length, energy and participants match the row."""
    r = row["round"]
    lineno, end = event
    t_end = float(end["t"])
    ck.check(close(row["sim_time_s"], t_end, ABS_TOL_S),
             f"round {r}: sim_time_s {show(row['sim_time_s'])} in rounds.csv != "
             f"{show(t_end)} = round_end event time (events.jsonl line {lineno})", r)
    if t0 is not None:
        length = t_end - t0
        ck.check(close(row["round_s"], length, ABS_TOL_S),
                 f"round {r}: round_s {show(row['round_s'])} in rounds.csv != "
                 f"{show(length)} = round_end event time - round start {show(t0)}", r)
    e_end = number(end.get("energy_j"))
    ck.check(e_end is not None and close(row["round_energy_j"], e_end),
             f"round {r}: round_energy_j {show(row['round_energy_j'])} in rounds.csv "
             f"!= {end.get('energy_j')!r} in its round_end event (events.jsonl line "
             f"{lineno})", r)
    ck.check(end.get("participants") == row["participants"],
             f"round {r}: participants {row['participants']} in rounds.csv != "
             f"{end.get('participants')} in its round_end event (events.jsonl line "
             f"{lineno})", r)


def check_summary(ck: Checker, summary: dict[str, Any], rows: list[Row]) -> None:
    """summary.json's totals agree with rounds.csv (keys it lacks are not required)."""
    last = rows[-1] if rows else None
    expected: list[tuple[str, float, float]] = [
        ("rounds", len(rows), 0),
        ("energy_j", last["energy_j"] if last else 0.0, ABS_TOL_J),
        ("sim_time_s", last["sim_time_s"] if last else 0.0, ABS_TOL_S),
    ]
    for col in STATUS_COLUMNS:
        if all(col in x.values for x in rows):
            expected.append((col, sum(x[col] for x in rows), 0))
    for key, want, tol in expected:
        if key not in summary:
            continue
        got = summary[key]
        num = number(got)
        ok = num is not None and (got == want if tol == 0 else close(num, float(want), tol))
        ck.check(ok, f"summary.json {key} {got} != {show(want)} from rounds.csv")
