"""Numbers a report shows, computed from a :class:`Run` (no plotting, no I/O).

Definitions (also in docs/reports.md):

- *fleet energy*: joules spent by every selected client in every recorded round, all phases
  (compute + downlink + uplink + idle); the last value of rounds.csv ``energy_j``.
- *energy per accuracy point*: fleet energy divided by the final test accuracy in percentage
  points (J/pp): what one point of the final accuracy cost the fleet.
- *participation*: aggregated client-rounds over selected client-rounds.
- *busy* seconds: compute + communication; *idle* seconds: waiting for the round to close
  after the client's upload arrived.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedsim.reporting.run import DROPOUT_STATUSES, INFEASIBLE, OK, STRAGGLER, Run, Table

PHASE_COLUMNS = {"compute": "compute_j", "downlink": "downlink_j", "uplink": "uplink_j",
                 "idle": "idle_j"}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------
# Headline numbers
# ---------------------------------------------------------------------------------------------
@dataclass
class Headline:
    rounds_done: int
    rounds_planned: int | None
    final_accuracy: float | None
    final_round: int | None
    best_accuracy: float | None
    best_round: int | None
    final_loss: float | None
    sim_time_s: float
    energy_j: float
    j_per_point: float | None
    client_rounds: int
    aggregated: int
    stragglers: int
    infeasible: int
    dropouts: int
    participation: float | None
    bytes_down: float
    bytes_up: float
    mean_round_s: float | None
    final_bits_down: float | None
    final_bits_up: float | None
    n_clients: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fleet_size(run: Run) -> int:
    n = run.summary.get("clients")
    if isinstance(n, int | float) and n > 0:
        return int(n)
    fleet = run.scenario.get("fleet") or []
    total = sum(int(g.get("count", 0)) for g in fleet if isinstance(g, dict))
    return total or len(set(run.clients["client_id"].tolist()))


def headline(run: Run) -> Headline:
    r, c = run.rounds, run.clients
    acc = r["accuracy"] if len(r) else np.array([])
    done = len(r)
    final_acc = final_round = best_acc = best_round = final_loss = None
    if done:
        final_acc = _finite(acc[-1])
        final_round = int(r["round"][-1])
        final_loss = _finite(r["loss"][-1])
        if np.isfinite(acc).any():
            i = int(np.nanargmax(acc))
            best_acc, best_round = float(acc[i]), int(r["round"][i])
    sim_time = float(r["sim_time_s"][-1]) if done else float(run.summary.get("sim_time_s") or 0)
    energy = float(r["energy_j"][-1]) if done else float(run.summary.get("energy_j") or 0)
    status = c["status"]
    selected = len(c)
    ok = int(np.count_nonzero(status == OK))
    strag = int(np.count_nonzero(status == STRAGGLER))
    infeas = int(np.count_nonzero(status == INFEASIBLE))
    drop = selected - ok - strag - infeas
    last_bits_down = last_bits_up = None
    if done and selected:
        last = c.where(c["round"] == r["round"][-1])
        if len(last):
            last_bits_down = _finite(float(np.nanmean(last["avg_bits"])))
            ok_last = last.where(last["status"] == OK)
            if len(ok_last):
                last_bits_up = _finite(float(np.nanmean(ok_last["avg_bits_up"])))
    rs = r["round_s"] if done else np.array([])
    return Headline(
        rounds_done=done,
        rounds_planned=run.planned_rounds,
        final_accuracy=final_acc,
        final_round=final_round,
        best_accuracy=best_acc,
        best_round=best_round,
        final_loss=final_loss,
        sim_time_s=sim_time,
        energy_j=energy,
        j_per_point=(energy / (100 * final_acc)) if final_acc else None,
        client_rounds=selected,
        aggregated=ok,
        stragglers=strag,
        infeasible=infeas,
        dropouts=drop,
        participation=(ok / selected) if selected else None,
        bytes_down=float(np.nansum(c["bits_down_payload"])) / 8 if selected else 0.0,
        bytes_up=float(np.nansum(c["bits_up_payload"])) / 8 if selected else 0.0,
        mean_round_s=float(np.nanmean(rs)) if len(rs) else None,
        final_bits_down=last_bits_down,
        final_bits_up=last_bits_up,
        n_clients=fleet_size(run),
    )


def reach(run: Run, target: float) -> tuple[float | None, float | None, int | None]:
    """Simulated time, fleet energy and round at which accuracy first reached ``target``."""
    r = run.rounds
    if not len(r):
        return None, None, None
    hit = np.flatnonzero(np.nan_to_num(r["accuracy"], nan=-1) >= target)
    if not len(hit):
        return None, None, None
    i = int(hit[0])
    return float(r["sim_time_s"][i]), float(r["energy_j"][i]), int(r["round"][i])


# ---------------------------------------------------------------------------------------------
# Per device class and per client
# ---------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """Sums over a set of client-rounds (one client, or one device class)."""

    key: str
    device_class: str
    device: str = ""
    group: str = ""
    clients: set[int] = field(default_factory=set)
    client_rounds: int = 0
    status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    energy: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASE_COLUMNS, 0.0))
    compute_s: float = 0.0
    comm_s: float = 0.0
    idle_s: float = 0.0
    bytes_down: float = 0.0
    bytes_up: float = 0.0
    samples_selected: float = 0.0
    samples_aggregated: float = 0.0

    @property
    def energy_j(self) -> float:
        return sum(self.energy.values())

    @property
    def busy_s(self) -> float:
        return self.compute_s + self.comm_s

    @property
    def aggregated(self) -> int:
        return self.status.get(OK, 0)

    @property
    def participation(self) -> float | None:
        return self.aggregated / self.client_rounds if self.client_rounds else None

    def per_client_round(self, phase: str) -> float:
        return self.energy[phase] / self.client_rounds if self.client_rounds else 0.0


def _grouped(run: Run, key_col: str) -> dict[Any, Stats]:
    """Sums of clients.csv per value of ``key_col`` (vectorised: long runs have many rows)."""
    c = run.clients
    if not len(c):
        return {}
    uniq, first, inv = np.unique(c[key_col], return_index=True, return_inverse=True)
    n = len(uniq)

    def total(col: str, mask: np.ndarray | None = None) -> np.ndarray:
        v = np.nan_to_num(c[col].astype(float))
        if mask is not None:
            v = v * mask
        return np.bincount(inv, weights=v, minlength=n)

    counts = np.bincount(inv, minlength=n)
    ok = c["status"] == OK
    statuses = {str(k): np.bincount(inv, weights=(c["status"] == k), minlength=n)
                for k in np.unique(c["status"])}
    energy = {p: total(col) for p, col in PHASE_COLUMNS.items()}
    compute_s, comm_s, idle_s = total("compute_s"), total("comm_s"), total("idle_s")
    down, up = total("bits_down_payload") / 8, total("bits_up_payload") / 8
    sel, agg = total("samples"), total("samples", ok)
    members: dict[int, set[int]] = {}
    for g, cid in set(zip(inv.tolist(), c["client_id"].astype(int).tolist(), strict=True)):
        members.setdefault(g, set()).add(cid)
    out: dict[Any, Stats] = {}
    for g, key in enumerate(uniq):
        i = first[g]
        st = Stats(key=str(key if key_col != "client_id" else int(key)),
                   device_class=str(c["device_class"][i]), device=str(c["device"][i]),
                   group=str(c["group"][i]))
        st.clients = members.get(g, set())
        st.client_rounds = int(counts[g])
        for k, v in statuses.items():
            if v[g]:
                st.status[k] = int(v[g])
        st.energy = {p: float(energy[p][g]) for p in PHASE_COLUMNS}
        st.compute_s, st.comm_s, st.idle_s = (float(compute_s[g]), float(comm_s[g]),
                                              float(idle_s[g]))
        st.bytes_down, st.bytes_up = float(down[g]), float(up[g])
        st.samples_selected, st.samples_aggregated = float(sel[g]), float(agg[g])
        out[key.item() if hasattr(key, "item") else key] = st
    return out


def class_stats(run: Run) -> list[Stats]:
    """One :class:`Stats` per device class, in fleet order."""

    def make() -> list[Stats]:
        by = _grouped(run, "device_class")
        out = []
        for cls in run.device_classes:
            st = by[cls]
            st.key, st.device, st.group = cls, "", ""
            out.append(st)
        return out

    return run.cached("class_stats", make)  # type: ignore[no-any-return]


def client_stats(run: Run) -> list[Stats]:
    """One :class:`Stats` per client that was ever selected, by client id."""
    by = _grouped(run, "client_id")
    return [by[k] for k in sorted(by)]


def status_kinds(run: Run) -> list[str]:
    """Statuses present, in a fixed reading order (ok first, failures after)."""
    present = set(run.clients["status"].tolist())
    order = [OK, STRAGGLER, INFEASIBLE, *DROPOUT_STATUSES]
    return [s for s in order if s in present] + sorted(present - set(order))


def class_accuracy(run: Run) -> dict[str, float] | None:
    """Mean per-client accuracy of each device class in the last round (optional column)."""
    c = run.clients
    if "accuracy" not in c or not len(run.rounds):
        return None
    last = c.where(c["round"] == run.rounds["round"][-1])
    out = {}
    for cls in run.device_classes:
        v = last["accuracy"][last["device_class"] == cls]
        v = v[np.isfinite(v)]
        if len(v):
            out[cls] = float(v.mean())
    return out or None


# ---------------------------------------------------------------------------------------------
# Fleet composition (scenario fleet groups, with the class each group's clients report)
# ---------------------------------------------------------------------------------------------
def fleet_groups(run: Run) -> list[dict[str, Any]]:
    group_class: dict[str, str] = {}
    group_device: dict[str, str] = {}
    c = run.clients
    for g, k, d in zip(c["group"], c["device_class"], c["device"], strict=True):
        group_class.setdefault(str(g), str(k))
        group_device.setdefault(str(g), str(d))
    rows = []
    for g in run.scenario.get("fleet") or []:
        if not isinstance(g, dict):
            continue
        label = str(g.get("name") or g.get("profile") or "?")
        rows.append({
            "group": label,
            "profile": str(g.get("profile", "")),
            "device_class": group_class.get(label, ""),
            "count": g.get("count"),
            "budget_bits": g.get("budget_bits"),
            "link": g.get("link") or "(profile default)",
            "override": g.get("override") or {},
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Bit-widths
# ---------------------------------------------------------------------------------------------
def layer_order(bits: Table) -> list[str]:
    seen: dict[str, None] = {}
    for name in bits["layer"]:
        seen.setdefault(str(name), None)
    return list(seen)


def has_quantized_bits(run: Run) -> bool:
    """True when any client's model ran below 32 bits on average (a quantized / mixed run).

    ``avg_bits`` of clients.csv is the parameter-weighted mean of bits.csv's per-layer bits,
    so this never needs to read bits.csv (large for long runs).
    """
    c = run.clients
    vals = np.concatenate([c["avg_bits"], c["avg_bits_up"][c["status"] == OK]])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return bool(len(vals)) and bool((vals < 32).any())


def last_round(run: Run) -> int | None:
    if len(run.rounds):
        return int(run.rounds["round"][-1])
    if len(run.clients):
        return int(np.nanmax(run.clients["round"]))
    return None


@dataclass
class BitMatrix:
    round: int
    clients: list[int]
    classes: list[str]
    layers: list[str]
    params: list[int]
    down: np.ndarray  # clients x layers, NaN where unknown
    up: np.ndarray


def bit_matrix(run: Run, round_: int | None = None) -> BitMatrix | None:
    """Clients x layers bits of one round (default: the last), rows in fleet order."""
    if round_ is None:
        round_ = last_round(run)
    if round_ is None:
        return None
    sel = run.bits({round_})
    sel = sel.where(sel["round"] == round_)
    if not len(sel):
        return None
    layers = layer_order(sel)
    params = {}
    for name, p in zip(sel["layer"], sel["params"], strict=True):
        params.setdefault(str(name), int(p) if math.isfinite(p) else 0)
    classes = run.client_classes()
    order = {k: i for i, k in enumerate(run.device_classes)}
    cids = sorted({int(x) for x in sel["client_id"]},
                  key=lambda cid: (order.get(classes.get(cid, ""), 99), cid))
    row = {cid: i for i, cid in enumerate(cids)}
    col = {name: j for j, name in enumerate(layers)}
    down = np.full((len(cids), len(layers)), np.nan)
    up = np.full((len(cids), len(layers)), np.nan)
    for cid, name, bd, bu in zip(sel["client_id"], sel["layer"], sel["bits_down"],
                                 sel["bits_up"], strict=True):
        i, j = row[int(cid)], col[str(name)]
        down[i, j], up[i, j] = bd, bu
    return BitMatrix(round=round_, clients=cids, classes=[classes.get(c, "") for c in cids],
                     layers=layers, params=[params[n] for n in layers], down=down, up=up)


@dataclass
class BitTrajectory:
    device_class: str
    rounds: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    budget: float | None


def _per_round(rounds: np.ndarray, values: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rounds present and the mean, min and max of the finite values in each."""
    ok = np.isfinite(values)
    rounds, values = rounds[ok], values[ok]
    if not len(rounds):
        e = np.array([])
        return e, e, e, e
    order = np.argsort(rounds, kind="stable")
    rounds, values = rounds[order], values[order]
    uniq, starts = np.unique(rounds, return_index=True)
    counts = np.diff(np.append(starts, len(rounds)))
    mean = np.add.reduceat(values, starts) / counts
    return uniq, mean, np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)


def bit_trajectories(run: Run, column: str = "avg_bits") -> list[BitTrajectory]:
    """Per device class and round: mean, min and max of a client's average bits.

    ``avg_bits`` is what the server sent (the training precision); ``avg_bits_up`` what the
    clients reported back (only aggregated clients count for it).
    """
    c = run.clients
    if column == "avg_bits_up":
        c = c.where(c["status"] == OK)
    out = []
    for cls in run.device_classes:
        sub = c.where(c["device_class"] == cls)
        if not len(sub):
            continue
        rounds, mean, lo, hi = _per_round(sub["round"], sub[column])
        budgets = np.unique(sub["budget_bits"][np.isfinite(sub["budget_bits"])])
        budget = float(budgets[0]) if len(budgets) == 1 else None
        out.append(BitTrajectory(cls, rounds, mean, lo, hi, budget))
    return out


def mean_bits_per_round(run: Run, column: str = "avg_bits") -> tuple[np.ndarray, np.ndarray]:
    """Fleet-wide mean of clients' average bits per round (aggregated clients for uplink)."""
    c = run.clients
    if column == "avg_bits_up":
        c = c.where(c["status"] == OK)
    rounds, mean, _, _ = _per_round(c["round"], c[column])
    return rounds, mean


# ---------------------------------------------------------------------------------------------
# Per-client timeline (from events.jsonl)
# ---------------------------------------------------------------------------------------------
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


def timeline(run: Run, rounds: list[int] | None = None, max_clients: int = 24) -> Timeline:
    if rounds is None:
        rounds = timeline_rounds(run)
    want = set(rounds)
    bounds: dict[int, list[float]] = {}
    segments: list[Segment] = []
    marks: list[Mark] = []
    last_end: dict[tuple[int, int], float] = {}
    done_phases: dict[tuple[int, int], list[str]] = defaultdict(list)
    for ev in run.iter_events(want):
        r = int(ev.get("round", -1))
        kind = str(ev["kind"])
        t = float(ev["t"])
        cid = ev.get("client")
        if kind == "round_start":
            bounds.setdefault(r, [t, t])[0] = t
            for sel in ev.get("selected") or []:
                last_end[(r, int(sel))] = t
            continue
        if kind == "round_end":
            bounds.setdefault(r, [t, t])[1] = t
            continue
        if cid is None:
            continue
        cid = int(cid)
        key = (r, cid)
        if kind in PHASE_EVENTS:
            phase = PHASE_EVENTS[kind]
            dur = float(ev.get("duration_s") or 0.0)
            segments.append(Segment(cid, r, phase, t - dur, t))
            last_end[key] = t
            done_phases[key].append(phase)
        elif kind == "infeasible":
            marks.append(Mark(cid, r, kind, t, str(ev.get("reason", ""))))
        else:
            # straggler, dropout, offline, battery...: the phase in progress was cut short.
            phase = ev.get("phase")
            if not phase:
                done = done_phases[key]
                nxt = [p for p in PHASE_SEQUENCE if p not in done]
                phase = nxt[0] if nxt else None
            start = last_end.get(key)
            if phase and start is not None and t > start:
                segments.append(Segment(cid, r, str(phase), start, t, failed=True))
            marks.append(Mark(cid, r, kind, t, str(ev.get("cause", ev.get("reason", "")))))
            last_end[key] = t
    # idle: a client whose upload arrived waits for the round to close
    for seg in list(segments):
        if seg.kind == "uplink" and not seg.failed and seg.round in bounds:
            end = bounds[seg.round][1]
            if end > seg.end:
                segments.append(Segment(seg.client, seg.round, "idle", seg.end, end))

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


# ---------------------------------------------------------------------------------------------
# Curves (single runs and seed groups)
# ---------------------------------------------------------------------------------------------
def accuracy_curve(run: Run, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, accuracy) with x one of sim_time_s, energy_j, round; NaN accuracies dropped."""
    r = run.rounds
    if not len(r):
        return np.array([]), np.array([])
    xs = r[x].astype(float)
    ys = r["accuracy"].astype(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok]


def band(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 200
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean and standard deviation of several curves on a common x grid (seed groups).

    The grid spans the x range that every curve covers, so the band never extrapolates.
    """
    curves = [(x, y) for x, y in curves if len(x) >= 2]
    if len(curves) < 2:
        return None
    lo = max(float(x.min()) for x, _ in curves)
    hi = min(float(x.max()) for x, _ in curves)
    if not hi > lo:
        return None
    grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(axis=0), ys.std(axis=0)
