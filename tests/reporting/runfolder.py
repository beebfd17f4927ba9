"""Write small but realistic run folders (the simulator's format) for the reporting tests.

A tiny discrete timeline per round, the engine's (fedsim/engine/client.py, sync.py): every
selected client receives the model, trains, and sends its update; a deadline turns late
clients into stragglers (charged the part of the phase they finished), a client whose
battery empties stops mid-training, clients that reported wait at idle power for the round
to close. Only the timeline is made up here: records are the engine's dataclasses
(:mod:`fedsim.engine.records`) written by the real writer (:class:`RunFolder`), payloads
come from :func:`fedsim.payload.layer_payload_bits`, and ``fedsim verify`` must accept
every folder this writes (tests/reporting/test_runfolder_fixture.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from fedsim.engine.records import ClientRoundRecord, RoundRecord
from fedsim.payload import layer_payload_bits
from fedsim.records.schema import (
    BATTERY,
    DROPOUT,
    INFEASIBLE,
    OFFLINE,
    OK,
    STRAGGLER,
)
from fedsim.records.writer import RunFolder
from fedsim.spec import FLOAT_BITS

LAYERS = [("conv1", 432), ("layer1.conv", 9216), ("layer2.conv", 18432), ("fc", 640)]
FLOAT_PARAMS = 200  # biases and BatchNorm state: sent at 32 bits both ways


@dataclass(frozen=True)
class Group:
    name: str
    profile: str
    device_class: str
    count: int
    budget_bits: float
    compute_s: float  # seconds of local training at 8 bits
    active_w: float
    idle_w: float
    down_bps: float
    up_bps: float
    radio_w: float


PHONE = Group("phones", "pixel-7", "phone", 3, 4, 6.0, 4.5, 0.4, 40e6, 10e6, 1.2)
SBC = Group("pis", "raspberry-pi-4", "sbc", 3, 2, 14.0, 6.0, 2.7, 20e6, 8e6, 0.9)
JETSON = Group("jetsons", "jetson-nano", "jetson", 2, 6, 4.0, 9.0, 1.5, 50e6, 20e6, 1.0)
MCU = Group("mcus", "stm32h7", "mcu", 2, 2, 30.0, 0.3, 0.05, 0.5e6, 0.25e6, 0.2)

QUANTIZED = {"fedmpq", "aqfl", "fpq8"}


def _bits_for(alg: str, budget: float, cid: int, r: int) -> list[int]:
    if alg not in QUANTIZED:
        return [FLOAT_BITS] * len(LAYERS)
    if alg == "fpq8":
        return [8] * len(LAYERS)
    if alg == "aqfl":
        return [int(budget)] * len(LAYERS)
    # FedMPQ-like: first and last layers kept high, wide layers compressed near the budget
    b = int(budget)
    mid1 = max(1, min(8, b + ((cid + r) % 3) - 1))
    mid2 = max(1, min(8, b - 1 + (cid % 2)))
    return [8, mid1, mid2, min(8, b + 2)]


def _avg(bits: list[int]) -> float:
    total = sum(p for _, p in LAYERS)
    return sum(b * p for b, (_, p) in zip(bits, LAYERS, strict=True)) / total


def _payload(bits: list[int]) -> int:
    """Bits on the wire: every layer's payload plus the float state (fedsim.payload)."""
    layers = sum(layer_payload_bits(p, b) for b, (_, p) in zip(bits, LAYERS, strict=True))
    return layers + FLOAT_PARAMS * FLOAT_BITS


def _t(t: float) -> float:
    """Event timestamps as the engine writes them (fedsim.engine.core.round_time)."""
    return round(float(t), 9)


def make_run(
    root: Path,
    name: str = "tiny-fedmpq-s0",
    *,
    algorithm: str = "fedmpq",
    groups: tuple[Group, ...] = (PHONE, SBC),
    rounds: int = 3,
    deadline_s: float | None = 20.0,
    seed: int = 0,
    acc_max: float = 0.9,
    infeasible: tuple[tuple[int, int], ...] = (),
    slow: tuple[tuple[int, int], ...] = ((1, 4),),
    dropouts: tuple[tuple[int, int], ...] = (),
    per_round: int | None = None,
    scenario_name: str = "tiny",
    planned_rounds: int | None = None,
) -> Path:
    """Write a run folder ``root/name`` and return its path.

    ``infeasible``, ``slow`` and ``dropouts`` list (round, client) pairs that do not fit
    memory, compute too slowly to meet the deadline (stragglers), or whose battery empties
    halfway through local training (status and event ``battery``).
    """
    if (root / name).exists():
        raise FileExistsError(root / name)
    folder = RunFolder(root, name)
    folder.layer_params = list(LAYERS)
    clients: list[tuple[int, Group]] = []
    for g in groups:
        for _ in range(g.count):
            clients.append((len(clients), g))
    t = 0.0
    fleet_j = 0.0
    round_recs: list[RoundRecord] = []
    for r in range(rounds):
        t0 = t
        chosen = clients if per_round is None else [
            clients[(r * per_round + k) % len(clients)] for k in range(per_round)]
        chosen = sorted(chosen, key=lambda c: c[0])
        folder.on_event({"t": _t(t0), "round": r, "kind": "round_start",
                         "selected": [cid for cid, _ in chosen]})
        deadline = t0 + deadline_s if deadline_s else math.inf
        recs: list[ClientRoundRecord] = []
        ends: list[float] = []
        pend: list[dict[str, Any]] = []  # client events, sent in time order
        emit = partial(_client_event, pend, r)
        for cid, g in chosen:
            bits = _bits_for(algorithm, g.budget_bits, cid, r)
            rec = ClientRoundRecord(
                round=r, client_id=cid, device=g.profile, device_class=g.device_class,
                group=g.name, budget_bits=g.budget_bits, avg_bits=_avg(bits),
                samples=100 + 10 * cid, bits_down=tuple(bits))
            recs.append(rec)
            if (r, cid) in infeasible:
                rec.status = INFEASIBLE
                rec.reason = "needs 310.2 MB, usable 256.0 MB"
                emit(t0, "infeasible", cid, reason=rec.reason)
                continue
            rec.bits_down_payload = _payload(bits)
            down_s = rec.bits_down_payload / g.down_bps + 0.05
            # slower in later rounds for the SBCs, so the deadline bites in round 1
            comp_s = g.compute_s * (_avg(bits) / 8 if algorithm in QUANTIZED else 1.0)
            comp_s *= 1.0 + 0.35 * ((cid + r) % 3)
            if (r, cid) in slow:  # e.g. thermal throttling: cannot finish before the deadline
                comp_s = 1.5 * (deadline_s or 10.0)
            up = [max(1, b - (1 if (cid + li + r) % 4 == 0 else 0)) if algorithm == "fedmpq"
                  else b for li, b in enumerate(bits)]
            up_bits = _payload(up)
            up_s = up_bits / g.up_bps + 0.05
            phases = [("downlink", down_s, g.radio_w), ("compute", comp_s, g.active_w),
                      ("uplink", up_s, g.radio_w * 1.5)]
            tc = t0
            for phase, dur, watts in phases:
                if phase == "uplink":  # training returned the bits it uploads
                    rec.bits_up = tuple(up)
                    rec.avg_bits_up = _avg(up)
                    rec.bits_up_payload = up_bits
                # a stop inside the phase: the battery empties halfway, or the deadline
                stop = None
                if phase == "compute" and (r, cid) in dropouts:
                    stop = (tc + dur / 2, BATTERY, "battery")
                if tc + dur > deadline and (stop is None or stop[0] > deadline):
                    stop = (deadline, STRAGGLER, "deadline")
                if stop is not None:
                    at, status, cause = stop
                    _spend(rec, phase, at - tc, watts * (at - tc))
                    rec.status, rec.reason, rec.finished_s = status, cause, at
                    emit(at, status, cid, phase=phase, cause=cause, energy_j=rec.energy_j)
                    break
                tc += dur
                _spend(rec, phase, dur, watts * dur)
                if phase == "compute":
                    emit(tc, "compute_end", cid, duration_s=dur, energy_j=watts * dur, steps=4)
                else:
                    pb = rec.bits_down_payload if phase == "downlink" else rec.bits_up_payload
                    emit(tc, f"{phase}_end", cid, duration_s=dur, payload_bits=pb,
                         energy_j=watts * dur)
            else:
                rec.status, rec.finished_s = OK, tc
            assert rec.finished_s is not None
            ends.append(rec.finished_s)
        t_end = max(ends) if ends else t0
        for rec in recs:  # clients that reported idle until the round closes
            if rec.status == OK:
                assert rec.finished_s is not None
                idle_s = t_end - rec.finished_s
                g = next(g for c, g in chosen if c == rec.client_id)
                _spend(rec, "idle", idle_s, idle_s * g.idle_w)
        pend.sort(key=lambda e: e["t"])  # stable: the engine's order at equal times
        for e in pend:
            folder.on_event(e)
        ok = sorted(rec.client_id for rec in recs if rec.status == OK)
        folder.on_event({"t": _t(t_end), "round": r, "kind": "aggregate", "clients": ok})
        acc = acc_max * (1 - math.exp(-(r + 1) / 2.0))
        loss = 2.3 * math.exp(-(r + 1) / 2.5)
        for rec in recs:
            folder.on_client(rec)
        round_j = sum(rec.energy_j for rec in recs)
        fleet_j += round_j
        folder.on_event({"t": _t(t_end), "round": r, "kind": "round_end", "accuracy": acc,
                         "loss": loss, "energy_j": round_j, "participants": len(ok)})
        count = Counter(rec.status for rec in recs)
        rr = RoundRecord(
            round=r, sim_time_s=t_end, energy_j=fleet_j, accuracy=acc, loss=loss,
            participants=len(ok), stragglers=count[STRAGGLER], selected=len(recs),
            infeasible=count[INFEASIBLE], round_s=t_end - t0, round_energy_j=round_j,
            dropouts=count[DROPOUT], offline=count[OFFLINE], battery=count[BATTERY])
        folder.on_round(rr)
        round_recs.append(rr)
        t = t_end

    scenario = {
        "name": scenario_name, "seed": seed,
        "rounds": rounds if planned_rounds is None else planned_rounds,
        "data": {"dataset": "digits", "root": None,
                 "partition": {"kind": "dirichlet", "alpha": 0.5}},
        "model": {"name": "cnn", "options": {"width": 16}},
        "algorithm": {"name": algorithm, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005,
                      "local_epochs": 1, "batch_size": 32, "lr_milestones": [],
                      "lr_gamma": 0.1},
        "fleet": [{"profile": g.profile, "count": g.count, "budget_bits": g.budget_bits,
                   "link": None, "override": {}, "name": g.name} for g in groups],
        "profiles": [],
        "selection": {"per_round": per_round, "fraction": None, "deadline_s": deadline_s},
        "execution": {"executor": "inline", "workers": 1, "threads": 1, "device": "cpu",
                      "eval_batch_size": 1024},
        "description": "Tiny heterogeneous test run.",
    }
    folder.write_text("scenario.yaml", yaml.safe_dump(scenario, sort_keys=False))
    accs = [rr.accuracy for rr in round_recs]
    last = round_recs[-1] if round_recs else None
    counts = folder.status_counts
    summary = {
        "run_id": name, "scenario": scenario_name, "algorithm": algorithm, "seed": seed,
        "rounds": len(round_recs), "clients": len(clients),
        "model": {"name": "cnn", "quantized_layers": len(LAYERS),
                  "params": sum(p for _, p in LAYERS) + FLOAT_PARAMS,
                  "macs_per_sample": 123456},
        "final_accuracy": last.accuracy if last else None,
        "best_accuracy": max(accs) if accs else None,
        "final_loss": None,
        "sim_time_s": last.sim_time_s if last else 0.0,
        "energy_j": last.energy_j if last else 0.0,
        "stragglers": sum(rr.stragglers for rr in round_recs),
        "infeasible": sum(rr.infeasible for rr in round_recs),
        "dropouts": sum(rr.dropouts for rr in round_recs),
        "offline": sum(rr.offline for rr in round_recs),
        "battery": sum(rr.battery for rr in round_recs),
        "client_rounds": {
            "total": sum(counts.values()), "ok": counts.get(OK, 0),
            "lost": {k: v for k, v in sorted(counts.items()) if k != OK},
            "participation_rate": (counts.get(OK, 0) / sum(counts.values())
                                   if counts else None)},
        "host": {"wall_s": 1.0, "peak_rss_mb": 100.0},
    }
    folder.write_json("summary.json", summary)
    return folder.commit()


def _client_event(pend: list[dict[str, Any]], r: int, at: float, kind: str, cid: int,
                  **fields: Any) -> None:
    pend.append({"t": _t(at), "round": r, "kind": kind, "client": cid, **fields})


def _spend(rec: ClientRoundRecord, phase: str, seconds: float, energy_j: float) -> None:
    """Charge a phase's energy and book its time (fedsim.engine.client.ClientTask.spend)."""
    rec.charge(phase, energy_j)
    if phase == "compute":
        rec.compute_s += seconds
    elif phase == "idle":
        rec.idle_s += seconds
    else:
        rec.comm_s += seconds
