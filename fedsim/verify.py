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
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedsim.errors import InputError
from fedsim.payload import layer_payload_bits
from fedsim.rundir import BITS_COLUMNS, CLIENT_COLUMNS, ROUND_COLUMNS
from fedsim.spec import FLOAT_BITS

REL_TOL = 1e-6
ABS_TOL_J = 1e-9  # CSV floats are rounded to 1e-10
ABS_TOL_S = 1e-8  # event times are rounded to 1e-9
BUDGET_EPS = 1e-9

#: Methods whose downlink bit vector must fit the client's budget (weighted average).
DOWNLINK_BUDGET = ("fedmpq", "aqfl")
#: Methods whose uplink quantizer uses floor(budget) bits per layer.
UPLINK_BUDGET = ("fedpaq", "uveqfed")

RUN_FILES = ("scenario.yaml", "events.jsonl", "rounds.csv", "clients.csv", "bits.csv",
             "summary.json")

# Client statuses (fedsim.engine.records; repeated so this module stays a plain reader).
OK = "ok"
STRAGGLER = "straggler"
INFEASIBLE = "infeasible"
DROPOUT = "dropout"
OFFLINE = "offline"
BATTERY = "battery"
STALE = "stale"
KNOWN_STATUSES = (OK, STRAGGLER, INFEASIBLE, DROPOUT, OFFLINE, BATTERY, STALE)
#: rounds.csv column -> the status it counts (columns absent from older runs are skipped)
STATUS_COLUMNS = {"stragglers": STRAGGLER, "infeasible": INFEASIBLE, "dropouts": DROPOUT,
                  "offline": OFFLINE, "battery": BATTERY}
#: event kinds that say why a client did not report -> the status they imply
CLOSING_EVENTS = {STRAGGLER: STRAGGLER, INFEASIBLE: INFEASIBLE, DROPOUT: DROPOUT,
                  OFFLINE: OFFLINE, BATTERY: BATTERY, "battery_low": BATTERY, STALE: STALE}
PHASES = ("downlink", "compute", "uplink")
_PHASE_ENDS = tuple(f"{p}_end" for p in PHASES)


@dataclass(frozen=True)
class Violation:
    """One broken invariant, phrased with the round/client and the numbers that disagree."""

    message: str
    round: int | None = None
    client: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class VerifyReport:
    path: Path
    checks: int = 0
    rounds: int = 0
    client_rounds: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary_line(self) -> str:
        return (f"ok: {self.checks} checks on {self.rounds} rounds, "
                f"{self.client_rounds} client-rounds")

    def render(self, limit: int = 200) -> str:
        notes = [f"note: {n}" for n in self.notes]
        if self.ok:
            return "\n".join([self.summary_line(), *notes])
        n = len(self.violations)
        lines = [f"{self.path}: {n} violation{'s' if n != 1 else ''} "
                 f"({self.checks} checks on {self.rounds} rounds, "
                 f"{self.client_rounds} client-rounds):"]
        width = len(str(min(n, limit)))
        for i, v in enumerate(self.violations[:limit], 1):
            lines.append(f"{i:>{width}}. {v}")
        if n > limit:
            lines.append(f"... and {n - limit} more")
        return "\n".join([*lines, *notes])


# ------------------------------------------------------------------------------ reading


@dataclass
class _Row:
    line: int
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def _num(text: str, kind: type, file: Path, line: int, column: str) -> Any:
    try:
        if kind is int:
            return int(text)
        return float(text)
    except (TypeError, ValueError):
        raise InputError(
            f"line {line}: expected {'an integer' if kind is int else 'a number'}, "
            f"got {text!r}", file=file, key=column,
        ) from None


def _read_csv(path: Path, required: dict[str, Any],
              optional: dict[str, Any] | None = None) -> list[_Row]:
    """Rows of a run CSV with ``required`` columns typed (int/float/str; None: optional int).

    ``optional`` columns (added by later fedsim versions) are typed when the file has them
    and missing from the rows otherwise.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError("file is empty (expected a CSV header)", file=path)
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(
                    f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                    "(not a fedsim run file?)", file=path,
                )
            rows = []
            for lineno, raw in enumerate(reader, 2):
                if not raw:
                    continue
                if len(raw) != len(header):
                    raise InputError(
                        f"line {lineno}: {len(raw)} fields, header has {len(header)}", file=path
                    )
                rec = dict(zip(header, raw, strict=True))
                values: dict[str, Any] = {}
                wanted = {**required, **{c: k for c, k in (optional or {}).items()
                                         if c in header}}
                for col, kind in wanted.items():
                    text = rec[col]
                    if kind is str:
                        values[col] = text
                    elif kind is None:  # optional int: empty allowed
                        values[col] = None if text == "" else _num(text, int, path, lineno, col)
                    else:
                        values[col] = _num(text, kind, path, lineno, col)
                rows.append(_Row(lineno, values))
            return rows
    except UnicodeDecodeError:
        raise InputError("not a text file (expected UTF-8 CSV)", file=path) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None


def _read_events(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    ev = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {lineno}: not JSON ({exc.msg})", file=path) from None
                if not isinstance(ev, dict):
                    raise InputError(f"line {lineno}: expected a JSON object", file=path)
                for key, kinds in (("t", (int, float)), ("round", (int,)), ("kind", (str,))):
                    val = ev.get(key)
                    if (not isinstance(val, kinds) or isinstance(val, bool)
                            or (key == "t" and _number(val) is None)):
                        raise InputError(f"line {lineno}: event needs '{key}' "
                                         f"({'/'.join(k.__name__ for k in kinds)}), "
                                         f"got {val!r}", file=path, key=key)
                if "client" in ev and (not isinstance(ev["client"], int)
                                       or isinstance(ev["client"], bool)):
                    raise InputError(f"line {lineno}: 'client' must be an integer, got "
                                     f"{ev['client']!r}", file=path, key="client")
                out.append((lineno, ev))
    except UnicodeDecodeError:
        raise InputError("not a text file (expected UTF-8 JSON lines)", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None
    return out


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InputError("not a text file", file=path) from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot parse {what}: {str(exc).splitlines()[0]}", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping ({what}), got {type(data).__name__}", file=path)
    return data


_ROUND_TYPES: dict[str, type] = {
    "round": int, "sim_time_s": float, "energy_j": float, "participants": int,
    "stragglers": int, "selected": int, "infeasible": int, "round_s": float,
    "round_energy_j": float,
}
_CLIENT_TYPES: dict[str, type] = {
    "round": int, "client_id": int, "budget_bits": float, "avg_bits": float,
    "energy_j": float, "status": str, "avg_bits_up": float, "downlink_j": float,
    "compute_j": float, "uplink_j": float, "idle_j": float, "bits_down_payload": int,
    "bits_up_payload": int,
}
_ROUND_OPTIONAL: dict[str, type] = {"dropouts": int, "offline": int, "battery": int}
_CLIENT_OPTIONAL: dict[str, type] = {"staleness": int}
_BITS_TYPES: dict[str, Any] = {
    "round": int, "client_id": int, "layer": str, "params": int, "bits_down": None,
    "bits_up": None,
}
assert set(_ROUND_TYPES) | set(_ROUND_OPTIONAL) <= set(ROUND_COLUMNS)
assert set(_CLIENT_TYPES) | set(_CLIENT_OPTIONAL) <= set(CLIENT_COLUMNS)
assert set(_BITS_TYPES) <= set(BITS_COLUMNS)


# ------------------------------------------------------------------------------ checking


def _close(a: float, b: float, abs_tol: float = ABS_TOL_J) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=abs_tol)


def _g(x: float) -> str:
    try:
        return f"{x:.12g}"
    except (OverflowError, TypeError, ValueError):
        return str(x)


class _Checker:
    def __init__(self, report: VerifyReport) -> None:
        self.report = report

    def check(self, ok: bool, message: str, round: int | None = None,
              client: int | None = None) -> bool:
        self.report.checks += 1
        if not ok:
            self.report.violations.append(Violation(message, round, client))
        return ok


def _ids(value: Any) -> list[int] | None:
    """A JSON list of client ids, sorted; None if it is not one."""
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return sorted(value)


def _where(r: int, c: int) -> str:
    return f"round {r} client {c}"


def _number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (bools, text, ints beyond float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _weighted_avg(bits: list[int], params: list[int]) -> float:
    total = sum(params)
    if total <= 0:
        return float("nan")
    try:
        return sum(b * p for b, p in zip(bits, params, strict=True)) / total
    except OverflowError:
        return float("inf")


def _layers_payload(bits: list[int], params: list[int]) -> int | None:
    try:
        return sum(layer_payload_bits(p, b) for p, b in zip(params, bits, strict=True))
    except ValueError:
        return None


_Events = dict[str, list[tuple[int, dict[str, Any]]]]


def _events() -> _Events:
    return defaultdict(list)


@dataclass
class _Task:
    """One client's work on one model version: its events, dispatch to report or abort."""

    version: int
    client: int
    events: _Events = field(default_factory=_events)
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
                v = _number(e.get("energy_j"))
                if v is not None:
                    return v
        return sum(_number(e.get("energy_j")) or 0.0
                   for kind in _PHASE_ENDS for _, e in self.events.get(kind, []))

    def first_line(self) -> int:
        return min(n for lst in self.events.values() for n, _ in lst)


def _index_events(events: list[tuple[int, dict[str, Any]]], is_async: bool,
                  ) -> tuple[dict[tuple[int, int], list[_Task]], dict[int, _Events]]:
    """Client events grouped into tasks (by version and client), server events by round."""
    tasks: dict[tuple[int, int], list[_Task]] = defaultdict(list)
    rounds: dict[int, _Events] = defaultdict(_events)
    current: dict[int, _Task] = {}
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
        c = ev["client"]
        if is_async:  # a client works on one task at a time; "dispatch" starts the next
            task = current.get(c)
            if kind == "dispatch" or task is None or task.version != r:
                task = _Task(r, c)
                tasks[(r, c)].append(task)
                current[c] = task
        else:
            found = tasks[(r, c)]
            if not found:
                found.append(_Task(r, c))
            task = found[0]
        task.events[kind].append((lineno, ev))
    return tasks, rounds


def _match(row: _Row, tasks: dict[tuple[int, int], list[_Task]],
           by_client: dict[int, list[_Task]]) -> _Task | None:
    """The task a clients.csv row records: same client, dispatched at round - staleness.

    Failing that (async records cut by the end of the run carry the last version and no
    staleness), the client's unmatched task of an earlier version with the same outcome.
    """
    version = row["round"] - (row.values.get("staleness") or 0)
    status = row["status"]
    free = [t for t in tasks.get((version, row["client_id"]), []) if not t.matched]
    if not free:
        free = [t for t in by_client.get(row["client_id"], [])
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


def verify_run(run_dir: str | Path) -> VerifyReport:
    """Check every invariant of the run folder ``run_dir``; InputError if it is not one."""
    path = Path(run_dir)
    if not path.exists():
        raise InputError("no such run folder", file=path)
    if not path.is_dir():
        raise InputError("expected a run folder (a directory written by `fedsim run`)",
                         file=path)
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if len(missing) == len(RUN_FILES):
        raise InputError(f"not a run folder (a run folder has {', '.join(RUN_FILES)})",
                         file=path)
    if missing:
        raise InputError(f"incomplete run folder: missing {', '.join(missing)}", file=path)
    scenario = _read_mapping(path / "scenario.yaml", "scenario")
    summary = _read_mapping(path / "summary.json", "summary")
    events = _read_events(path / "events.jsonl")
    rounds = _read_csv(path / "rounds.csv", _ROUND_TYPES, _ROUND_OPTIONAL)
    clients = _read_csv(path / "clients.csv", _CLIENT_TYPES, _CLIENT_OPTIONAL)
    bits_rows = _read_csv(path / "bits.csv", _BITS_TYPES)

    algo = scenario.get("algorithm")
    algorithm = str(algo.get("name", "fedavg")) if isinstance(algo, dict) else "fedavg"
    # The authors' pruning-growing (FedMPQ's default) may end one layer's share above budget.
    overshoot = (algorithm == "fedmpq" and isinstance(algo, dict)
                 and algo.get("allocation", "reference") == "reference")
    is_async = scenario.get("mode") == "async"

    report = VerifyReport(path=path, rounds=len(rounds), client_rounds=len(clients))
    ck = _Checker(report)

    _check_time(ck, events)
    tasks, round_events = _index_events(events, is_async)
    by_client: dict[int, list[_Task]] = defaultdict(list)
    for (_, c), found in sorted(tasks.items()):
        by_client[c].extend(found)

    # ---------------------------------------------------------------- client-rounds
    bits_of: dict[tuple[int, int], list[_Row]] = defaultdict(list)
    for b in bits_rows:
        bits_of[(b["round"], b["client_id"])].append(b)
    seen: dict[tuple[int, int], _Row] = {}
    payloads = _Payloads()
    for row in clients:
        key = (row["round"], row["client_id"])
        if not is_async:  # async: a client may report twice in one aggregation
            first = seen.setdefault(key, row)
            if not ck.check(first is row, f"{_where(*key)}: two rows in clients.csv (lines "
                            f"{first.line} and {row.line})", *key):
                continue
        task = _match(row, tasks, by_client)
        _check_client(ck, row, task.events if task else _events(), algorithm,
                      bits_of.get(key, []), payloads, overshoot)
    payloads.check(ck)
    # (async: a client's bits.csv rows repeat per record; only unexplained keys count)
    keys = {(row["round"], row["client_id"]) for row in clients} if is_async else set(seen)
    for key in sorted(set(bits_of) - keys):
        ck.check(False, f"{_where(*key)}: rows in bits.csv but no row in clients.csv", *key)

    stale_j, stale_n = 0.0, 0
    for (v, c), found in sorted(tasks.items()):
        for t in found:
            if t.matched:
                continue
            if t.outcome() == STALE:
                stale_n += 1
                stale_j += t.energy_j()
                continue
            ck.check(False, f"{_where(v, c)}: events.jsonl has "
                     f"{', '.join(sorted(t.events))} event(s) (from line {t.first_line()}) "
                     "but clients.csv has no row for them", v, c)
    if stale_n:
        report.notes.append(
            f"{stale_n} task(s) still running when the run ended (stale events) have no "
            f"clients.csv row; their {_g(stale_j)} J are in no energy total")

    # ---------------------------------------------------------------- rounds
    groups = _group_rows(ck, rounds, clients, is_async)
    seen_rounds: set[int] = set()
    prev: _Row | None = None
    prev_end: float | None = None
    for row, rows in zip(rounds, groups, strict=True):
        r = row["round"]
        if not ck.check(r not in seen_rounds, f"round {r}: two rows in rounds.csv", r):
            continue
        seen_rounds.add(r)
        _check_round(ck, row, rows, prev, round_events.get(r, _events()), is_async, prev_end)
        ends = round_events.get(r, {}).get("round_end", [])
        prev, prev_end = row, (float(ends[0][1]["t"]) if ends else None)

    if not is_async:
        for r in sorted({row["round"] for row in clients} - seen_rounds):
            ck.check(False, f"round {r}: clients.csv has rows but rounds.csv has no row", r)
    for r in sorted(set(round_events) - seen_rounds):
        ck.check(False, f"round {r}: events.jsonl has "
                 f"{', '.join(sorted(round_events[r]))} event(s) but rounds.csv has no row", r)

    _check_summary(ck, summary, rounds)
    return report


def _check_time(ck: _Checker, events: list[tuple[int, dict[str, Any]]]) -> None:
    """Simulated time never goes backwards in events.jsonl."""
    prev_line, prev_t = 0, -math.inf
    for lineno, ev in events:
        t = float(ev["t"])
        ck.check(t >= prev_t,
                 f"events.jsonl line {lineno} ({ev['kind']}, round {ev['round']}"
                 f"{', client ' + str(ev['client']) if 'client' in ev else ''}) at t={_g(t)} s "
                 f"is earlier than line {prev_line} at t={_g(prev_t)} s: simulated time went "
                 "backwards", ev["round"], ev.get("client"))
        if t > prev_t or not prev_line:
            prev_line, prev_t = lineno, max(t, prev_t)


class _Payloads:
    """Collects (payload, layer bits) pairs: payload - layer bits is the float state."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, str, int, int]] = []

    def add(self, r: int, c: int, direction: str, payload: int, layers: int) -> None:
        self.items.append((r, c, direction, payload, layers))

    def check(self, ck: _Checker) -> None:
        if not self.items:
            return
        counts = Counter(p - lay for _, _, _, p, lay in self.items)
        const, _ = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
        ck.check(const >= 0 and const % FLOAT_BITS == 0,
                 f"model float state is {const} bits (payload - layer payloads): not a "
                 f"whole number of {FLOAT_BITS}-bit values")
        for r, c, d, payload, layers in self.items:
            ck.check(payload - layers == const,
                     f"{_where(r, c)}: bits_{d}_payload {payload} in clients.csv != "
                     f"{layers + const} computed from bits.csv ({layers} layer bits + "
                     f"{const} float-state bits)", r, c)


def _check_client(ck: _Checker, row: _Row, evs: _Events, algorithm: str,
                  brows: list[_Row], payloads: _Payloads, overshoot: bool = False) -> None:
    """One clients.csv row against its events and its bits."""
    r, c = row["round"], row["client_id"]
    where = _where(r, c)
    status = row["status"]

    # energy = sum of phases
    phases = [row[f"{p}_j"] for p in (*PHASES, "idle")]
    ck.check(_close(row["energy_j"], sum(phases)),
             f"{where}: energy_j {_g(row['energy_j'])} in clients.csv != "
             f"{_g(sum(phases))} = downlink_j+compute_j+uplink_j+idle_j", r, c)

    # A closing event other than a phase end (straggler, dropout, offline, battery; any
    # future kind that carries energy) holds the energy so far and the interrupted phase.
    closing = [(n, e) for kind, lst in sorted(evs.items()) if kind not in _PHASE_ENDS
               for n, e in lst if "energy_j" in e or "phase" in e]
    interrupted_in = {e.get("phase") for _, e in closing if isinstance(e.get("phase"), str)}
    for p in PHASES:
        ends = evs.get(f"{p}_end", [])
        col = row[f"{p}_j"]
        ck.check(len(ends) <= 1,
                 f"{where}: {len(ends)} {p}_end events (lines "
                 f"{', '.join(str(n) for n, _ in ends)})", r, c)
        if ends:
            ev_e = _number(ends[0][1].get("energy_j"))
            if ck.check(ev_e is not None,
                        f"{where}: {p}_end event (events.jsonl line {ends[0][0]}) has no "
                        "energy_j number", r, c):
                assert ev_e is not None
                ck.check(_close(col, ev_e),
                         f"{where}: {p}_j {_g(col)} in clients.csv != {_g(ev_e)} in its "
                         f"{p}_end event (events.jsonl line {ends[0][0]})", r, c)
        elif p not in interrupted_in:
            ck.check(_close(col, 0.0),
                     f"{where}: {p}_j {_g(col)} in clients.csv but no {p}_end event "
                     "(and not interrupted in that phase) in events.jsonl", r, c)
    for lineno, e in closing:
        ev_e = _number(e.get("energy_j"))
        if ck.check(ev_e is not None,
                    f"{where}: {e['kind']} event (events.jsonl line {lineno}) has no "
                    "energy_j number", r, c):
            assert ev_e is not None
            ck.check(_close(row["energy_j"], ev_e),
                     f"{where}: energy_j {_g(row['energy_j'])} in clients.csv != "
                     f"{_g(ev_e)} in its {e['kind']} event (events.jsonl line {lineno})",
                     r, c)

    # status vs events
    if status == OK:
        lacking = [f"{p}_end" for p in PHASES if not evs.get(f"{p}_end")]
        ck.check(not lacking,
                 f"{where}: status ok but no {', '.join(lacking)} event in events.jsonl", r, c)
    elif status in KNOWN_STATUSES:
        kinds = sorted(k for k, s in CLOSING_EVENTS.items() if s == status)
        ck.check(any(evs.get(k) for k in kinds),
                 f"{where}: status {status} but no {' or '.join(kinds)} event in "
                 "events.jsonl", r, c)
    for kind, implied in CLOSING_EVENTS.items():
        if evs.get(kind):
            ck.check(status == implied,
                     f"{where}: {kind} event (events.jsonl line {evs[kind][0][0]}) but "
                     f"status '{status}' in clients.csv", r, c)

    # event payloads vs clients.csv
    for p, d in (("downlink", "down"), ("uplink", "up")):
        col = row[f"bits_{d}_payload"]
        for lineno, e in evs.get(f"{p}_end", []):
            ck.check(e.get("payload_bits") == col,
                     f"{where}: bits_{d}_payload {col} in clients.csv != "
                     f"{e.get('payload_bits')} in its {p}_end event (events.jsonl line "
                     f"{lineno})", r, c)

    _check_bits(ck, row, evs, algorithm, brows, payloads, overshoot)


def _check_bits(ck: _Checker, row: _Row, evs: _Events, algorithm: str, brows: list[_Row],
                payloads: _Payloads, overshoot: bool = False) -> None:
    """Bits: averages, budgets and payloads of one clients.csv row."""
    r, c = row["round"], row["client_id"]
    where = _where(r, c)
    if not ck.check(bool(brows), f"{where}: no rows in bits.csv", r, c):
        return
    table = [(b["layer"], b["params"]) for b in brows]
    # async: a client reporting twice in one aggregation has its layer table twice
    n = len({name for name, _ in table}) or 1
    if len(table) % n == 0 and table == table[:n] * (len(table) // n):
        brows = brows[:n] if len(brows) == n else _pick_copy(row, brows, n)
        table = table[:n]
    if not ck.check(len({name for name, _ in table}) == len(table),
                    f"{where}: bits.csv layers {[name for name, _ in table]} repeat", r, c):
        return
    params = [p for _, p in table]
    down = [b["bits_down"] for b in brows]
    up = [b["bits_up"] for b in brows]

    if ck.check(all(b is not None for b in down),
                f"{where}: bits.csv has no bits_down for some layers", r, c):
        avg_down = _weighted_avg(down, params)
        ck.check(_close(row["avg_bits"], avg_down),
                 f"{where}: avg_bits {_g(row['avg_bits'])} in clients.csv != "
                 f"{_g(avg_down)} = parameter-weighted average of bits_down in bits.csv", r, c)
        if algorithm in DOWNLINK_BUDGET:
            slack = max(params) / max(1, sum(params)) if overshoot else 0.0
            ck.check(avg_down <= row["budget_bits"] + slack + BUDGET_EPS,
                     f"{where}: downlink average bits {_g(avg_down)} (bits.csv) exceed "
                     f"budget_bits {_g(row['budget_bits'])} ({algorithm} is budget-bound"
                     + (", by more than one layer's share" if overshoot else "") + ")",
                     r, c)
        if row["bits_down_payload"] != 0 or evs.get("downlink_end"):
            layers = _layers_payload(down, params)
            if ck.check(layers is not None,
                        f"{where}: bits_down {down} has a bit-width the payload format "
                        "does not allow (1..16 or 32)", r, c):
                assert layers is not None
                payloads.add(r, c, "down", row["bits_down_payload"], layers)

    if all(b is not None for b in up):
        avg_up = _weighted_avg(up, params)
        ck.check(_close(row["avg_bits_up"], avg_up),
                 f"{where}: avg_bits_up {_g(row['avg_bits_up'])} in clients.csv != "
                 f"{_g(avg_up)} = parameter-weighted average of bits_up in bits.csv", r, c)
        if algorithm in UPLINK_BUDGET:
            budget = row["budget_bits"]
            cap = math.floor(budget + BUDGET_EPS) if math.isfinite(budget) else budget
            ck.check(max(up) <= cap,
                     f"{where}: uplink bits {max(up)} (bits.csv) exceed floor(budget_bits)"
                     f" = {cap} ({algorithm} quantizes the uplink at the budget)", r, c)
        layers = _layers_payload(up, params)
        if ck.check(layers is not None,
                    f"{where}: bits_up {up} has a bit-width the payload format does not "
                    "allow (1..16 or 32)", r, c):
            assert layers is not None
            payloads.add(r, c, "up", row["bits_up_payload"], layers)
    elif ck.check(all(b is None for b in up),
                  f"{where}: bits.csv has bits_up for some layers only", r, c):
        ck.check(row["bits_up_payload"] == 0 and not evs.get("uplink_end"),
                 f"{where}: bits_up_payload {row['bits_up_payload']} in clients.csv "
                 "(or an uplink_end event) but no bits_up in bits.csv", r, c)


def _pick_copy(row: _Row, brows: list[_Row], n: int) -> list[_Row]:
    """Of several bits.csv copies of one (round, client), the one matching this row."""
    copies = [brows[i:i + n] for i in range(0, len(brows), n)]
    for copy in copies:
        params = [b["params"] for b in copy]
        down = [b["bits_down"] for b in copy]
        if None not in down and _close(_weighted_avg(down, params), row["avg_bits"]):
            up = [b["bits_up"] for b in copy]
            if None in up or _close(_weighted_avg(up, params), row["avg_bits_up"]):
                return copy
    return copies[0]


def _group_rows(ck: _Checker, rounds: list[_Row], clients: list[_Row],
                is_async: bool) -> list[list[_Row]]:
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
    by_round: dict[int, list[_Row]] = defaultdict(list)
    for row in clients:
        by_round[row["round"]].append(row)
    return [by_round.get(row["round"], []) for row in rounds]


def _check_round(ck: _Checker, row: _Row, rows: list[_Row], prev: _Row | None,
                 revs: _Events, is_async: bool, prev_end: float | None) -> None:
    """One rounds.csv row against its clients' rows and the round's events."""
    r = row["round"]
    statuses = Counter(x["status"] for x in rows)
    ok_ids = sorted(x["client_id"] for x in rows if x["status"] == OK)
    unknown = sum(n for s, n in statuses.items() if s not in KNOWN_STATUSES)

    fleet = sum(x["energy_j"] for x in rows)
    ck.check(_close(row["round_energy_j"], fleet),
             f"round {r}: round_energy_j {_g(row['round_energy_j'])} in rounds.csv != "
             f"{_g(fleet)} = sum of its {len(rows)} clients' energy_j in clients.csv", r)
    if prev is not None:
        expect = prev["energy_j"] + row["round_energy_j"]
        ck.check(_close(row["energy_j"], expect),
                 f"round {r}: cumulative energy_j {_g(row['energy_j'])} in rounds.csv != "
                 f"{_g(expect)} = previous energy_j {_g(prev['energy_j'])} + "
                 f"round_energy_j {_g(row['round_energy_j'])}", r)
    elif r == 0:
        ck.check(_close(row["energy_j"], row["round_energy_j"]),
                 f"round 0: cumulative energy_j {_g(row['energy_j'])} in rounds.csv != "
                 f"round_energy_j {_g(row['round_energy_j'])}", r)

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
    if is_async:
        for x in rows:
            ok_round = x["round"] == r if x["status"] == OK else x["round"] <= r
            ck.check(ok_round, f"{_where(x['round'], x['client_id'])}: recorded with "
                     f"aggregation {r} (clients.csv line {x.line}) but its round is "
                     f"{'not ' if x['status'] == OK else 'after '}{r}", x["round"],
                     x["client_id"])

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
        ids = sorted(x["client_id"] for x in rows)
        ck.check(_ids(sel) == ids,
                 f"round {r}: round_start selected {sel} (events.jsonl line "
                 f"{starts[0][0]}) != clients {ids} in clients.csv", r)
    if aggs:
        lineno, agg = aggs[0]
        ck.check(_ids(agg.get("clients")) == ok_ids,
                 f"round {r}: aggregate event clients {agg.get('clients')} (events.jsonl "
                 f"line {lineno}) != clients with status ok {ok_ids} in clients.csv", r)
        if "staleness" in agg:
            clients, stale = agg.get("clients"), agg.get("staleness")
            pairs = (sorted(zip(clients, stale, strict=True))
                     if isinstance(clients, list) and isinstance(stale, list)
                     and len(clients) == len(stale) and _ids(stale) is not None
                     and _ids(clients) is not None else None)
            want = sorted((x["client_id"], x.values.get("staleness", 0))
                          for x in rows if x["status"] == OK)
            ck.check(pairs == want,
                     f"round {r}: aggregate event (client, staleness) pairs "
                     f"{pairs if pairs is not None else stale} (events.jsonl line {lineno}) "
                     f"!= {want} in clients.csv", r)
    if ends:
        lineno, end = ends[0]
        t_end = float(end["t"])
        ck.check(_close(row["sim_time_s"], t_end, ABS_TOL_S),
                 f"round {r}: sim_time_s {_g(row['sim_time_s'])} in rounds.csv != "
                 f"{_g(t_end)} = round_end event time (events.jsonl line {lineno})", r)
        t0 = (float(starts[0][1]["t"]) if starts and not is_async
              else prev_end if prev is not None else 0.0 if r == 0 else None)
        if t0 is not None:
            length = t_end - t0
            ck.check(_close(row["round_s"], length, ABS_TOL_S),
                     f"round {r}: round_s {_g(row['round_s'])} in rounds.csv != "
                     f"{_g(length)} = round_end event time - round start {_g(t0)}", r)
        e_end = _number(end.get("energy_j"))
        ck.check(e_end is not None and _close(row["round_energy_j"], e_end),
                 f"round {r}: round_energy_j {_g(row['round_energy_j'])} in rounds.csv "
                 f"!= {end.get('energy_j')!r} in its round_end event (events.jsonl line "
                 f"{lineno})", r)
        ck.check(end.get("participants") == row["participants"],
                 f"round {r}: participants {row['participants']} in rounds.csv != "
                 f"{end.get('participants')} in its round_end event (events.jsonl line "
                 f"{lineno})", r)


def _check_summary(ck: _Checker, summary: dict[str, Any], rounds: Iterable[_Row]) -> None:
    rows = list(rounds)
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
        num = _number(got)
        ok = num is not None and (got == want if tol == 0 else _close(num, float(want), tol))
        ck.check(ok, f"summary.json {key} {got} != {_g(want)} from rounds.csv")
