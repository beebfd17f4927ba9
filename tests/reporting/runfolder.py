"""Write small but realistic run folders (the simulator's format) for the reporting tests.

A tiny discrete timeline per round: every selected client receives the model, trains, and
sends its update; a deadline turns late clients into stragglers (charged the part of the
phase they finished), idle clients wait at idle power for the round to close. Files, columns
and event kinds are those of fedsim/rundir.py and fedsim/engine/core.py.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROUND_COLUMNS = [
    "round", "sim_time_s", "energy_j", "accuracy", "loss", "participants", "stragglers",
    "selected", "infeasible", "round_s", "round_energy_j",
]
CLIENT_COLUMNS = [
    "round", "client_id", "device", "budget_bits", "avg_bits", "samples", "compute_s",
    "comm_s", "energy_j", "status", "device_class", "group", "avg_bits_up", "downlink_j",
    "compute_j", "uplink_j", "idle_j", "idle_s", "bits_down_payload", "bits_up_payload",
    "reason",
]
BITS_COLUMNS = ["round", "client_id", "layer", "params", "bits_down", "bits_up"]

LAYERS = [("conv1", 432), ("layer1.conv", 9216), ("layer2.conv", 18432), ("fc", 640)]


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
        return [32] * len(LAYERS)
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
    return sum(b * p for b, (_, p) in zip(bits, LAYERS, strict=True)) + 32 * len(LAYERS)


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
    client_accuracy: bool = False,
    per_round: int | None = None,
    scenario_name: str = "tiny",
    planned_rounds: int | None = None,
) -> Path:
    """Write a run folder ``root/name`` and return its path.

    ``infeasible``, ``slow`` and ``dropouts`` list (round, client) pairs that do not fit
    memory, compute too slowly to meet the deadline (stragglers), or drop out halfway through
    local training (battery; a later simulator's status and event kind).
    """
    path = root / name
    path.mkdir(parents=True)
    clients: list[tuple[int, Group]] = []
    for g in groups:
        for _ in range(g.count):
            clients.append((len(clients), g))
    events: list[dict[str, Any]] = []
    round_rows, client_rows, bits_rows = [], [], []
    t = 0.0
    fleet_j = 0.0
    stragglers_total = infeasible_total = 0
    accs = []
    for r in range(rounds):
        t0 = t
        chosen = clients if per_round is None else [
            clients[(r * per_round + k) % len(clients)] for k in range(per_round)]
        chosen = sorted(chosen, key=lambda c: c[0])
        events.append({"t": t0, "round": r, "kind": "round_start",
                       "selected": [cid for cid, _ in chosen]})
        deadline = t0 + deadline_s if deadline_s else math.inf
        recs: dict[int, dict[str, Any]] = {}
        ends: list[float] = []
        pend: list[dict[str, Any]] = []
        for cid, g in chosen:
            bits = _bits_for(algorithm, g.budget_bits, cid, r)
            rec = {
                "round": r, "client_id": cid, "device": g.profile, "budget_bits": g.budget_bits,
                "avg_bits": round(_avg(bits), 4), "samples": 100 + 10 * cid,
                "compute_s": 0.0, "comm_s": 0.0, "energy_j": 0.0, "status": "ok",
                "device_class": g.device_class, "group": g.name, "avg_bits_up": 0.0,
                "downlink_j": 0.0, "compute_j": 0.0, "uplink_j": 0.0, "idle_j": 0.0,
                "idle_s": 0.0, "bits_down_payload": 0, "bits_up_payload": 0, "reason": "",
                "_bits": bits, "_up": [], "_g": g, "_end": None,
            }
            recs[cid] = rec
            if (r, cid) in infeasible:
                rec["status"] = "infeasible"
                rec["reason"] = "needs 310.2 MB, usable 256.0 MB"
                pend.append({"t": t0, "round": r, "kind": "infeasible", "client": cid,
                             "reason": rec["reason"]})
                infeasible_total += 1
                continue
            down_bits = _payload(bits)
            rec["bits_down_payload"] = down_bits
            down_s = down_bits / g.down_bps + 0.05
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
                if phase == "compute" and (r, cid) in dropouts:
                    done = dur / 2
                    rec["compute_j"] += watts * done
                    rec["compute_s"] += done
                    rec["status"] = "battery"
                    rec["reason"] = "battery empty"
                    rec["_end"] = tc + done
                    pend.append({"t": tc + done, "round": r, "kind": "battery", "client": cid,
                                 "phase": "compute", "cause": "battery empty",
                                 "energy_j": rec["downlink_j"] + rec["compute_j"]})
                    break
                if tc + dur > deadline:
                    done = deadline - tc
                    rec[f"{phase}_j"] += watts * done
                    if phase == "compute":
                        rec["compute_s"] += done
                    else:
                        rec["comm_s"] += done
                    rec["status"] = "straggler"
                    rec["reason"] = "deadline"
                    rec["_end"] = deadline
                    pend.append({"t": deadline, "round": r, "kind": "straggler", "client": cid,
                                 "phase": phase, "cause": "deadline",
                                 "energy_j": sum(rec[f"{p}_j"] for p in
                                                 ("downlink", "compute", "uplink"))})
                    stragglers_total += 1
                    break
                tc += dur
                rec[f"{phase}_j"] += watts * dur
                if phase == "compute":
                    rec["compute_s"] += dur
                    pend.append({"t": tc, "round": r, "kind": "compute_end", "client": cid,
                                 "duration_s": dur, "energy_j": watts * dur, "steps": 4})
                else:
                    rec["comm_s"] += dur
                    kind = f"{phase}_end"
                    pb = down_bits if phase == "downlink" else up_bits
                    if phase == "uplink":
                        rec["bits_up_payload"] = up_bits
                        rec["_up"] = up
                        rec["avg_bits_up"] = round(_avg(up), 4)
                    pend.append({"t": tc, "round": r, "kind": kind, "client": cid,
                                 "duration_s": dur, "payload_bits": pb, "energy_j": watts * dur})
            if rec["status"] == "ok":
                rec["_end"] = tc
            ends.append(rec["_end"])
        t_end = max(ends) if ends else t0
        for rec in recs.values():
            if rec["status"] == "ok":
                rec["idle_s"] = t_end - rec["_end"]
                rec["idle_j"] = rec["idle_s"] * rec["_g"].idle_w
            rec["energy_j"] = sum(rec[f"{p}_j"] for p in ("downlink", "compute", "uplink",
                                                            "idle"))
        pend.sort(key=lambda e: e["t"])
        events += pend
        ok = sorted(cid for cid, rec in recs.items() if rec["status"] == "ok")
        events.append({"t": t_end, "round": r, "kind": "aggregate", "clients": ok})
        acc = acc_max * (1 - math.exp(-(r + 1) / 2.0))
        loss = 2.3 * math.exp(-(r + 1) / 2.5)
        accs.append(acc)
        round_j = sum(rec["energy_j"] for rec in recs.values())
        fleet_j += round_j
        n_strag = sum(1 for rec in recs.values() if rec["status"] == "straggler")
        n_inf = sum(1 for rec in recs.values() if rec["status"] == "infeasible")
        events.append({"t": t_end, "round": r, "kind": "round_end", "accuracy": acc,
                       "loss": loss, "energy_j": round_j, "participants": len(ok)})
        round_rows.append([r, t_end, fleet_j, acc, loss, len(ok), n_strag, len(recs), n_inf,
                           t_end - t0, round_j])
        for cid in sorted(recs):
            rec = recs[cid]
            row = [rec[c] for c in CLIENT_COLUMNS]
            if client_accuracy:
                row.append(round(acc - 0.02 * (8 - rec["budget_bits"]), 4))
            client_rows.append(row)
            for li, (layer, params) in enumerate(LAYERS):
                up = rec["_up"][li] if rec["_up"] else ""
                bits_rows.append([r, cid, layer, params, rec["_bits"][li], up])
        t = t_end

    def write_csv(fname: str, header: list[str], rows: list[list[Any]]) -> None:
        with open(path / fname, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for row in rows:
                w.writerow([repr(round(v, 10)) if isinstance(v, float) else v for v in row])

    write_csv("rounds.csv", ROUND_COLUMNS, round_rows)
    write_csv("clients.csv", CLIENT_COLUMNS + (["accuracy"] if client_accuracy else []),
              client_rows)
    write_csv("bits.csv", BITS_COLUMNS, bits_rows)
    with open(path / "events.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
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
    (path / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False),
                                        encoding="utf-8")
    summary = {
        "run_id": name, "scenario": scenario_name, "algorithm": algorithm, "seed": seed,
        "rounds": rounds, "clients": len(clients),
        "model": {"name": "cnn", "quantized_layers": len(LAYERS),
                  "params": sum(p for _, p in LAYERS) + 200, "macs_per_sample": 123456},
        "final_accuracy": accs[-1] if accs else None,
        "best_accuracy": max(accs) if accs else None,
        "final_loss": None, "sim_time_s": t, "energy_j": fleet_j,
        "stragglers": stragglers_total, "infeasible": infeasible_total,
        "host": {"wall_s": 1.0, "peak_rss_mb": 100.0},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return path
