"""Per-client timeline of a few rounds, rebuilt from events.jsonl."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fedsim.reporting.run import OK, Run


@dataclass
class Segment:
    client: int
    round: int
    kind: str  # downlink / compute / uplink / idle
    start: float
    end: float
    failed: bool = False  # interrupted by a deadline or a dropout


@dataclass
class Mark:
    client: int
    round: int
    kind: str  # straggler / infeasible / dropout / offline / battery / ...
    t: float
    note: str = ""


@dataclass
class Timeline:
    rounds: list[int]
    bounds: dict[int, tuple[float, float]]  # round -> (start, end)
    clients: list[int]
    classes: dict[int, str]
    segments: list[Segment]
    marks: list[Mark]
    total_clients: int


def timeline_rounds(run: Run, n: int = 3) -> list[int]:
    """A few consecutive rounds to draw: around the first round where a client failed."""
    r = run.rounds
    if not len(r):
        return []
    rounds = [int(x) for x in r["round"]]
    c = run.clients
    bad = sorted({int(x) for x in c["round"][c["status"] != OK]})
    if bad and bad[0] in rounds:
        i = rounds.index(bad[0])
        start = max(0, min(i - 1, len(rounds) - n))
    else:
        start = 0
    return rounds[start:start + n]


PHASE_EVENTS = {"downlink_end": "downlink", "compute_end": "compute", "uplink_end": "uplink"}
PHASE_SEQUENCE = ("downlink", "compute", "uplink")


class _EventReader:
    """Turns events into phase segments and failure marks, one event at a time.

    A phase event carries its end and duration, but a failure event carries only its time:
    the reader remembers where each client's last phase ended (and which phases it finished)
    so that the phase a failure cut short can be drawn from there to the failure.
    """

    def __init__(self) -> None:
        self.bounds: dict[int, list[float]] = {}
        self.segments: list[Segment] = []
        self.marks: list[Mark] = []
        self.last_end: dict[tuple[int, int], float] = {}
        self.done_phases: dict[tuple[int, int], list[str]] = defaultdict(list)

    def feed(self, ev: dict[str, Any]) -> None:
        r = int(ev.get("round", -1))
        kind = str(ev["kind"])
        t = float(ev["t"])
        cid = ev.get("client")
        if kind == "round_start":
            self.bounds.setdefault(r, [t, t])[0] = t
            for sel in ev.get("selected") or []:
                self.last_end[(r, int(sel))] = t
            return
        if kind == "round_end":
            self.bounds.setdefault(r, [t, t])[1] = t
            return
        if cid is None:
            return
        cid = int(cid)
        if kind in PHASE_EVENTS:
            phase = PHASE_EVENTS[kind]
            dur = float(ev.get("duration_s") or 0.0)
            self.segments.append(Segment(cid, r, phase, t - dur, t))
            self.last_end[(r, cid)] = t
            self.done_phases[(r, cid)].append(phase)
        elif kind == "infeasible":
            self.marks.append(Mark(cid, r, kind, t, str(ev.get("reason", ""))))
        else:
            self._cut_short(ev, r, cid, kind, t)

    def _cut_short(self, ev: dict[str, Any], r: int, cid: int, kind: str, t: float) -> None:
        """Straggler, dropout, offline, battery...: the phase in progress was cut short.

        The event names that phase when it knows it; otherwise it is the first phase of the
        round's sequence the client had not finished.
        """
        key = (r, cid)
        phase = ev.get("phase")
        if not phase:
            done = self.done_phases[key]
            nxt = [p for p in PHASE_SEQUENCE if p not in done]
            phase = nxt[0] if nxt else None
        start = self.last_end.get(key)
        if phase and start is not None and t > start:
            self.segments.append(Segment(cid, r, str(phase), start, t, failed=True))
        self.marks.append(Mark(cid, r, kind, t, str(ev.get("cause", ev.get("reason", "")))))
        self.last_end[key] = t

    def add_idle(self) -> None:
        """Idle: a client whose upload arrived waits for the round to close."""
        for seg in list(self.segments):
            if seg.kind == "uplink" and not seg.failed and seg.round in self.bounds:
                end = self.bounds[seg.round][1]
                if end > seg.end:
                    self.segments.append(Segment(seg.client, seg.round, "idle", seg.end, end))


def timeline(run: Run, rounds: list[int] | None = None, max_clients: int = 24) -> Timeline:
    if rounds is None:
        rounds = timeline_rounds(run)
    reader = _EventReader()
    for ev in run.iter_events(set(rounds)):
        reader.feed(ev)
    reader.add_idle()
    segments, marks, bounds = reader.segments, reader.marks, reader.bounds

    classes = run.client_classes()
    involved = sorted({s.client for s in segments} | {m.client for m in marks})
    total = len(involved)
    order = {k: i for i, k in enumerate(run.device_classes)}
    if len(involved) > max_clients:
        involved = _pick_clients(involved, marks, classes, run.device_classes, max_clients)
    involved.sort(key=lambda cid: (order.get(classes.get(cid, ""), 99), cid))
    keep = set(involved)
    return Timeline(
        rounds=[r for r in rounds if r in bounds],
        bounds={r: (b[0], b[1]) for r, b in bounds.items()},
        clients=involved,
        classes={cid: classes.get(cid, "") for cid in involved},
        segments=[s for s in segments if s.client in keep],
        marks=[m for m in marks if m.client in keep],
        total_clients=total,
    )


def _pick_clients(involved: list[int], marks: list[Mark], classes: dict[int, str],
                  class_order: list[str], n: int) -> list[int]:
    """Keep failures first (up to a third), then fill round-robin over device classes."""
    chosen: list[int] = []
    for m in marks:
        if m.client not in chosen and len(chosen) < max(1, n // 3):
            chosen.append(m.client)
    by_class: dict[str, list[int]] = defaultdict(list)
    for cid in involved:
        if cid not in chosen:
            by_class[classes.get(cid, "")].append(cid)
    queues = [by_class[k] for k in class_order if by_class.get(k)]
    queues += [v for k, v in by_class.items() if k not in class_order and v]
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return chosen
