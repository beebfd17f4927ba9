"""The arithmetic of one vectorised synchronous round (no SimPy here).

:func:`plan_round` is the round's opening (``SyncServer._open`` + ``ClientTask.admit`` for
every selected client at once); :func:`play_round` works out each admitted client's
timeline (``ClientTask._run``) and the round's close (``SyncServer._await_close``). Every
float is computed with the same operations in the same order as the per-client engine, so
the two agree to the last bit; see :mod:`fedsim.engine.batchsync` for the tie rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedsim.engine.client import CAUSE_STATUS, failure_draws
from fedsim.engine.columns import ClientBatch, EventBatch
from fedsim.engine.population import Population
from fedsim.records.schema import OK, STATUSES

if TYPE_CHECKING:
    from fedsim.engine.core import Engine

PHASES = ("downlink", "compute", "uplink")
_CODE = {name: i for i, name in enumerate(STATUSES)}
# self-interrupt causes (0: none) and the status each gives
_FAILURE, _OFFLINE, _BATTERY = 1, 2, 3
_SELF_CAUSE = {_FAILURE: "failure", _OFFLINE: "offline", _BATTERY: "battery"}


@dataclass
class RoundPlan:
    """The selected clients of a round, their costs (per cohort and per client) and who is
    admitted. Arrays without a suffix are per selected client, ``_u`` per cohort."""

    r: int
    t0: float
    selected: np.ndarray
    rows: np.ndarray
    inv: np.ndarray  # the cohort (index into the ``_u`` arrays) of each selected client
    vectors: list[tuple[int, ...]]
    steps_u: np.ndarray
    payload_u: np.ndarray
    idle_u: np.ndarray
    avg_u: np.ndarray
    labels_u: list[tuple[str, str, str, float, int]]  # device, class, group, budget, samples
    dd: np.ndarray
    de: np.ndarray
    cc: np.ndarray
    ce: np.ndarray
    ud: np.ndarray
    ue: np.ndarray
    infeasible: np.ndarray
    battery_refused: np.ndarray
    reason: np.ndarray  # object: why a client was not admitted ('' if it was)

    @property
    def admitted(self) -> np.ndarray:
        return ~self.infeasible & ~self.battery_refused

    def admission_events(self, r: int) -> EventBatch:
        """``infeasible`` / ``battery_low`` events, in selected order, at the round's start."""
        out = np.flatnonzero(~self.admitted)
        kind = np.where(self.infeasible[out], 0, 1)
        return EventBatch(r, np.full(len(out), round(self.t0, 9)), kind,
                          ("infeasible", "battery_low"), self.selected[out],
                          {"reason": self.reason[out]})


def plan_round(eng: Engine, pop: Population, r: int, selected: np.ndarray,
               t0: float) -> RoundPlan:
    """Costs and admission of every selected client (memory first, then battery)."""
    cost = eng.cost
    rows = pop.rows(selected)
    ucoh, inv = np.unique(pop.cohort[rows], return_inverse=True)
    reps = [pop.reps[c] for c in ucoh.tolist()]
    descs = [pop.descs[c] for c in ucoh.tolist()]
    bits = eng.port.downlink_bits(r, reps)
    vectors = [tuple(bits[rep]) for rep in reps]
    steps_u = np.array([eng.steps_for(d.samples) * eng.config.epochs for d in descs],
                       dtype=np.int64)
    comp = [cost.compute(rep, v, int(s)) for rep, v, s in zip(reps, vectors, steps_u,
                                                             strict=True)]
    mem = [cost.memory_problem(rep, v) for rep, v in zip(reps, vectors, strict=True)]
    payload_u = np.array([cost.transfer(rep, v, "down").payload_bits
                          for rep, v in zip(reps, vectors, strict=True)], dtype=np.int64)
    pay = payload_u[inv]
    dd, de = cost.transfer_many(selected, pay, "down")  # type: ignore[attr-defined]
    ud, ue = cost.transfer_many(selected, pay, "up")  # type: ignore[attr-defined]
    cc = np.array([c.time_s for c in comp])[inv]
    ce = np.array([c.energy_j for c in comp])[inv]
    infeasible = np.array([m is not None for m in mem])[inv]
    reason = np.array([m or "" for m in mem], dtype=object)[inv]
    spendable = pop.spendable(rows)
    battery = ~infeasible & (de + ce + ue > spendable)
    for i in np.flatnonzero(battery).tolist():
        reason[i] = (f"battery cannot pay the round: needs {de[i] + ce[i] + ue[i]:.3g} J, "
                     f"{spendable[i]:.3g} J above the floor")
    return RoundPlan(
        r=r, t0=t0, selected=selected, rows=rows, inv=inv, vectors=vectors, steps_u=steps_u,
        payload_u=payload_u, idle_u=np.array([cost.idle_power_w(rep) for rep in reps]),
        avg_u=np.array([cost.avg_bits(v) for v in vectors]),
        labels_u=[(d.device, d.device_class, d.group, d.budget_bits, d.samples)
                  for d in descs],
        dd=dd, de=de, cc=cc, ce=ce, ud=ud, ue=ue, infeasible=infeasible,
        battery_refused=battery, reason=reason)


@dataclass
class _Cuts:
    """Where each admitted client's battery would run dry: time, phase, energy left."""

    t: np.ndarray
    phase: np.ndarray
    left: np.ndarray


def _battery_cuts(pop: Population, rows: np.ndarray, starts: list[np.ndarray],
                  durs: list[np.ndarray], energies: list[np.ndarray]) -> _Cuts:
    """Phase by phase as ``ClientTask._phase``: a phase that costs more than what is left
    above the floor runs for ``duration x left / energy`` and stops the client."""
    n = len(rows)
    has = pop.has_battery[rows]
    level, floor = pop.level[rows], pop.floor[rows]
    cut_t, cut_phase, left = np.full(n, math.inf), np.full(n, -1), np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    for k in range(3):
        sp = np.where(has, level - floor, math.inf)
        e = energies[k]
        cut = open_ & (e > sp) & (e > 0)
        spc = np.maximum(0.0, sp[cut])
        cut_t[cut] = starts[k][cut] + durs[k][cut] * spc / e[cut]
        cut_phase[cut], left[cut] = k, spc
        open_ &= ~cut
        level = np.where(has, np.maximum(0.0, level - e), level)
    return _Cuts(cut_t, cut_phase, left)


@dataclass
class Timeline:
    """What the admitted clients did: how far each got (``stage``: the phase it stopped in,
    3 = reported), when and why it stopped, what it spent; and the round's close."""

    plan: RoundPlan
    a: np.ndarray  # positions (in the selected order) of the admitted clients
    t_phase: list[np.ndarray]  # start of downlink, end of downlink, compute, uplink
    stage: np.ndarray
    stop_t: np.ndarray  # arrival or abort time
    cause: np.ndarray  # object: '' (reported) or the abort's cause
    by_self: np.ndarray  # stopped by its own failure, departure or battery (not the close)
    spent: list[np.ndarray]  # downlink_j, compute_j, uplink_j
    compute_s: np.ndarray
    comm_s: np.ndarray
    idle_s: np.ndarray
    idle_j: np.ndarray
    t_end: float
    enough: bool

    @property
    def arrived_rows(self) -> np.ndarray:
        return self.a[self.stage == 3]

    def energy_j(self) -> np.ndarray:
        d, c, u = self.spent
        return ((d + c) + u) + self.idle_j


def play_round(eng: Engine, pop: Population, plan: RoundPlan, ends: np.ndarray, target: int,
               deadline_at: float | None, *, over_commit: bool) -> Timeline:
    """Each admitted client's timeline and the round's close; drains the batteries."""
    a = np.flatnonzero(plan.admitted)
    rows, cids, t0 = plan.rows[a], plan.selected[a], plan.t0
    dd, de, cc, ce, ud, ue = (x[a] for x in (plan.dd, plan.de, plan.cc, plan.ce, plan.ud,
                                               plan.ue))
    t_d = t0 + dd
    t_c = t_d + cc
    t_u = t_c + ud
    starts = [np.full(len(a), t0), t_d, t_c]
    cuts = _battery_cuts(pop, rows, starts, [dd, cc, ud], [de, ce, ue])
    tau, why = cuts.t.copy(), np.where(np.isfinite(cuts.t), _BATTERY, 0)
    off = ends[rows]
    sooner = off <= tau
    tau, why = np.where(sooner, off, tau), np.where(sooner & np.isfinite(off), _OFFLINE, why)
    p = pop.failure_prob[rows]
    risky = np.flatnonzero(p > 0)
    if len(risky):
        u_fail, u_when = failure_draws(eng.config.seed, plan.r, 0, cids[risky])
        plan_s = (dd[risky] + cc[risky]) + ud[risky]
        at = t0 + u_when * plan_s
        t_fail = np.where(u_fail < p[risky], t0 + np.maximum(0.0, at - t0), math.inf)
        first = t_fail <= tau[risky]
        tau[risky[first]], why[risky[first]] = t_fail[first], _FAILURE
    by_self = (why > 0) & (tau <= t_u)
    t_end, enough = _close_time(t0, t_u, tau, by_self, target, deadline_at, over_commit)
    arrived = ~by_self & (t_u <= t_end)
    by_self &= tau <= t_end
    stop_t = np.where(arrived, t_u, np.where(by_self, tau, t_end))
    # the phase each stopped in: own interrupts win ties with their phase's end, the close
    # loses them (the phase's end was scheduled before the close was known)
    stage = np.where(stop_t < t_d, 0, np.where(stop_t < t_c, 1, 2))
    own = np.where(stop_t < t_d, 0, np.where(stop_t <= t_c, 1, 2))
    stage = np.where(by_self, own, stage)
    stage = np.where(by_self & (why == _BATTERY), cuts.phase, stage)
    stage = np.where(arrived, 3, stage)
    cause = np.full(len(a), "", dtype=object)
    for code, name in _SELF_CAUSE.items():
        cause[by_self & (why == code)] = name
    cause[~arrived & ~by_self] = "over-commit" if enough else "deadline"
    tl = _charge(plan, a, [t0, t_d, t_c, t_u], stage, stop_t, cause, by_self, cuts, t_end,
                 enough)
    d, c, u = tl.spent
    for e in (d, c, u, tl.idle_j):
        pop.drain(rows, e)
    return tl


def _close_time(t0: float, t_u: np.ndarray, tau: np.ndarray, by_self: np.ndarray,
                target: int, deadline_at: float | None,
                over_commit: bool) -> tuple[float, bool]:
    """When the round closes (everyone done, the deadline, or ``target`` arrivals) and
    whether ``target`` clients had arrived by then."""
    if not len(t_u):
        return t0, False
    ends = np.where(by_self, tau, t_u)
    t_end = float(ends.max())
    if deadline_at is not None:
        t_end = min(t_end, t0 + max(0.0, deadline_at - t0))
    reports = np.sort(t_u[~by_self])
    if over_commit and len(reports) >= target:
        t_end = min(t_end, float(reports[target - 1]))
    enough = int(np.count_nonzero(reports <= t_end)) >= target
    return t_end, enough


def _charge(plan: RoundPlan, a: np.ndarray, t_phase: list, stage: np.ndarray,
            stop_t: np.ndarray, cause: np.ndarray, by_self: np.ndarray, cuts: _Cuts,
            t_end: float, enough: bool) -> Timeline:
    """What each admitted client spent: whole phases, the part of the phase it stopped in
    (a battery cut spends what was left), and idling from its report to the close."""
    durs = [plan.dd[a], plan.cc[a], plan.ud[a]]
    energies = [plan.de[a], plan.ce[a], plan.ue[a]]
    spent, took = [], []
    for k in range(3):
        done = stop_t - t_phase[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(durs[k] > 0, np.minimum(1.0, done / durs[k]), 1.0)
        part = np.where(by_self & (cause == "battery"), cuts.left, energies[k] * frac)
        spent.append(np.where(stage > k, energies[k], np.where(stage == k, part, 0.0)))
        took.append(np.where(stage > k, durs[k], np.where(stage == k, done, 0.0)))
    comm_s = np.where(stage >= 2, took[0] + took[2], took[0])
    idle_s = np.where(stage == 3, np.maximum(0.0, t_end - stop_t), 0.0)
    idle_j = idle_s * plan.idle_u[plan.inv[a]]
    return Timeline(plan, a, t_phase, stage, stop_t, cause, by_self, spent, took[1], comm_s,
                    idle_s, idle_j, t_end, enough)


_KINDS = ("downlink_end", "compute_end", "uplink_end", "straggler", "dropout", "offline",
          "battery")
_ABORT_KIND = {"deadline": 3, "over-commit": 3, "failure": 4, "offline": 5, "battery": 6}
_CAUSES = ("deadline", "over-commit", "failure", "offline", "battery")
_NUMERIC = {"duration_s": 0.0, "payload_bits": 0, "energy_j": 0.0, "steps": 0}


@dataclass
class _Block:
    """Events of one kind of step: times, the chain of earlier phase ends that scheduled
    them (newest first, -inf past the round's start), and their fields."""

    kind: np.ndarray
    t: np.ndarray
    chain: list[np.ndarray]
    sub: int  # phase ends before own interrupts scheduled at the same step
    idx: np.ndarray  # position among the admitted clients
    fields: dict[str, np.ndarray]


def timeline_events(tl: Timeline, r: int) -> EventBatch:
    """The admitted clients' events in the order SimPy processes them: by time, then by the
    chain of phase ends that scheduled them, then by selection order; the close's
    interrupts come last, in selection order."""
    plan, a, stage = tl.plan, tl.a, tl.stage
    t0, t_d, t_c, t_u = tl.t_phase
    n = len(a)
    start = np.full(n, t0)
    none = np.full(n, -math.inf)
    idx = np.arange(n)
    inv = plan.inv[a]
    per_phase = [(t_d, [start, none, none], plan.dd, plan.de),
                 (t_c, [t_d, start, none], plan.cc, plan.ce),
                 (t_u, [t_c, t_d, start], plan.ud, plan.ue)]
    blocks = []
    for k, (t, chain, dur, energy) in enumerate(per_phase):
        m = stage > k
        blocks.append(_Block(np.full(int(m.sum()), k), t[m], [c[m] for c in chain], 0, idx[m],
                             {"duration_s": dur[a][m], "energy_j": energy[a][m],
                              "payload_bits": plan.payload_u[inv][m],
                              "steps": plan.steps_u[inv][m]}))
    own = tl.by_self
    if own.any():
        # a battery cut is scheduled with its phase; a failure or a departure at the start
        st = np.where(tl.cause[own] == "battery", stage[own], 0)
        chain = [np.choose(st, [per_phase[k][1][j][own] for k in range(3)]) for j in range(3)]
        blocks.append(_Block(_abort_kinds(tl.cause[own]), tl.stop_t[own], chain, 1, idx[own],
                             _abort_fields(tl, own)))
    late = ~own & (stage < 3)
    if late.any():  # after everything else: the close interrupts them in selection order
        blocks.append(_Block(_abort_kinds(tl.cause[late]), tl.stop_t[late], [], 2, idx[late],
                             _abort_fields(tl, late)))
    kind, t, order_idx, fields = _merge(blocks)
    return EventBatch(r, t, kind, _KINDS, plan.selected[a][order_idx], fields,
                      codes={"phase": PHASES, "cause": _CAUSES})


def _abort_kinds(causes: np.ndarray) -> np.ndarray:
    return np.array([_ABORT_KIND[c] for c in causes.tolist()], dtype=np.int64)


def _abort_fields(tl: Timeline, m: np.ndarray) -> dict[str, np.ndarray]:
    d, c, u = (x[m] for x in tl.spent)
    cause = np.array([_CAUSES.index(c) for c in tl.cause[m].tolist()], dtype=np.int64)
    return {"phase": np.minimum(tl.stage[m], 2).astype(np.int64), "cause": cause,
            "energy_j": ((d + c) + u) + 0.0}


def _processing_order(blocks: list[_Block], t: np.ndarray) -> np.ndarray:
    """Sort by time; only events at the same instant need the full key (scheduling chain,
    then phase ends before own interrupts, then selection order). The close's interrupts
    (``sub`` 2) come after every other event, in selection order."""
    sub = np.concatenate([np.full(len(b.t), b.sub) for b in blocks])
    idx = np.concatenate([b.idx for b in blocks])
    body = np.flatnonzero(sub < 2)
    order = body[np.argsort(t[body], kind="stable")]
    ts = t[order]
    tied = np.zeros(len(order), dtype=bool)
    same = ts[1:] == ts[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    if tied.any():
        chain = [np.concatenate([b.chain[j] if j < len(b.chain) else
                                 np.full(len(b.t), -math.inf) for b in blocks])
                 for j in range(3)]
        sel = order[tied]
        keys = (idx[sel], sub[sel], chain[2][sel], chain[1][sel], chain[0][sel], t[sel])
        order[tied] = sel[np.lexsort(keys)]
    late = np.flatnonzero(sub == 2)
    return np.concatenate([order, late[np.argsort(idx[late], kind="stable")]])


def _merge(blocks: list[_Block]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, np.ndarray]]:
    """All blocks' events, in processing order, with every field as one column."""
    t = np.concatenate([b.t for b in blocks])
    order = _processing_order(blocks, t)
    fields = {}
    for name, fill in {**_NUMERIC, "phase": -1, "cause": -1}.items():
        col = np.concatenate([b.fields[name] if name in b.fields else
                              np.full(len(b.t), fill) for b in blocks])
        fields[name] = col[order]
    kind = np.concatenate([b.kind for b in blocks]).astype(np.int64)[order]
    idx = np.concatenate([b.idx for b in blocks])
    return kind, t[order], idx[order], fields


_STATUS_OF_CAUSE = {"": OK, **CAUSE_STATUS}  # '' : the client reported


def client_batch(tl: Timeline, pop: Population, r: int) -> ClientBatch:
    """Every selected client's record (admitted or not), in selection order. Text columns
    are int codes (device, class and group per cohort; status; reason)."""
    plan = tl.plan
    m, a, inv = len(plan.selected), tl.a, plan.inv
    labels = list(zip(*plan.labels_u, strict=True)) if plan.labels_u else [()] * 5
    status = np.where(plan.infeasible, _CODE["infeasible"], _CODE["battery"])
    status[a] = [_CODE[_STATUS_OF_CAUSE[c]] for c in tl.cause.tolist()]
    reasons: dict[str, int] = {}
    reason = np.empty(m, dtype=np.int64)
    texts = plan.reason.copy()
    texts[a] = tl.cause
    for i, text in enumerate(texts.tolist()):
        code = reasons.get(text)
        if code is None:
            code = reasons[text] = len(reasons)
        reason[i] = code

    def admitted(values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        out = np.full(m, fill, dtype=values.dtype)
        out[a] = values
        return out

    d, c, u = tl.spent
    up = tl.stage >= 2
    cols = {
        "round": np.full(m, r, dtype=np.int64), "client_id": plan.selected,
        "device": inv, "device_class": inv, "group": inv,
        "budget_bits": np.array(labels[3], dtype=np.float64)[inv],
        "avg_bits": plan.avg_u[inv], "samples": np.array(labels[4], dtype=np.int64)[inv],
        "compute_s": admitted(tl.compute_s), "comm_s": admitted(tl.comm_s),
        "energy_j": admitted(tl.energy_j()), "status": status,
        "downlink_j": admitted(d), "compute_j": admitted(c), "uplink_j": admitted(u),
        "idle_j": admitted(tl.idle_j), "idle_s": admitted(tl.idle_s),
        "bits_down_payload": admitted(plan.payload_u[inv][a]),
        "bits_up_payload": admitted(np.where(up, plan.payload_u[inv][a], 0)),
        "avg_bits_up": admitted(np.where(up, plan.avg_u[inv][a], 0.0)),
        "finished_s": admitted(tl.stop_t, math.nan), "reason": reason,
        "battery_j": np.where(pop.has_battery[plan.rows], pop.level[plan.rows], math.nan),
        "staleness": np.zeros(m, dtype=np.int64),
    }
    bits_up = np.full(m, -1, dtype=np.int64)
    bits_up[a[up]] = inv[a[up]]
    codes = {"device": tuple(labels[0]), "device_class": tuple(labels[1]),
             "group": tuple(labels[2]), "status": STATUSES, "reason": tuple(reasons)}
    return ClientBatch(cols, plan.vectors, inv.astype(np.int64), bits_up, status, codes)
