"""The headline numbers of one run: accuracy, time, energy, participation, traffic, bits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedsim.records.schema import BATTERY, OFFLINE
from fedsim.reporting.metrics.fleet import fleet_size
from fedsim.reporting.run import INFEASIBLE, OK, STRAGGLER, Run, Table


def finite(x: float | None) -> float | None:
    """``x`` as a float, or None when missing or not finite (NaN means "not recorded")."""
    return float(x) if x is not None and math.isfinite(x) else None


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
    dropouts: int  # failed mid-work (and statuses this version does not know)
    offline: int  # went offline mid-work
    battery: int  # battery could not pay the round, or emptied mid-work
    participation: float | None
    bytes_down: float
    bytes_up: float
    mean_round_s: float | None
    final_bits_down: float | None
    final_bits_up: float | None
    n_clients: int

    @property
    def lost(self) -> int:
        """Client-rounds lost to fleet dynamics: dropouts, offline, battery."""
        return self.dropouts + self.offline + self.battery

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Accuracy:
    final: float | None = None
    final_round: int | None = None
    best: float | None = None
    best_round: int | None = None
    final_loss: float | None = None


def _accuracy(rounds: Table) -> _Accuracy:
    """Final and best accuracy with their rounds; all None when no round completed or none
    recorded an accuracy (a system-only run), so the page shows "—" rather than NaN."""
    out = _Accuracy()
    if not len(rounds):
        return out
    acc = rounds["accuracy"]
    out.final = finite(acc[-1])
    out.final_round = int(rounds["round"][-1])
    out.final_loss = finite(rounds["loss"][-1])
    if np.isfinite(acc).any():
        i = int(np.nanargmax(acc))
        out.best, out.best_round = float(acc[i]), int(rounds["round"][i])
    return out


def _last_round_bits(run: Run) -> tuple[float | None, float | None]:
    """Mean bits sent to the last round's clients, and reported back by those aggregated.

    The uplink mean counts aggregated clients only: the others reported nothing.
    """
    r, c = run.rounds, run.clients
    down = up = None
    if len(r) and len(c):
        last = c.where(c["round"] == r["round"][-1])
        if len(last):
            down = finite(float(np.nanmean(last["avg_bits"])))
            ok_last = last.where(last["status"] == OK)
            if len(ok_last):
                up = finite(float(np.nanmean(ok_last["avg_bits_up"])))
    return down, up


def headline(run: Run) -> Headline:
    r, c = run.rounds, run.clients
    done = len(r)
    acc = _accuracy(r)
    # a run with no completed round still has a summary: fall back to its totals
    sim_time = float(r["sim_time_s"][-1]) if done else float(run.summary.get("sim_time_s") or 0)
    energy = float(r["energy_j"][-1]) if done else float(run.summary.get("energy_j") or 0)
    status = c["status"]
    selected = len(c)
    ok = int(np.count_nonzero(status == OK))
    strag = int(np.count_nonzero(status == STRAGGLER))
    infeas = int(np.count_nonzero(status == INFEASIBLE))
    offline = int(np.count_nonzero(status == OFFLINE))
    battery = int(np.count_nonzero(status == BATTERY))
    bits_down, bits_up = _last_round_bits(run)
    rs = r["round_s"] if done else np.array([])
    return Headline(
        rounds_done=done,
        rounds_planned=run.planned_rounds,
        final_accuracy=acc.final,
        final_round=acc.final_round,
        best_accuracy=acc.best,
        best_round=acc.best_round,
        final_loss=acc.final_loss,
        sim_time_s=sim_time,
        energy_j=energy,
        j_per_point=(energy / (100 * acc.final)) if acc.final else None,
        client_rounds=selected,
        aggregated=ok,
        stragglers=strag,
        infeasible=infeas,
        dropouts=selected - ok - strag - infeas - offline - battery,
        offline=offline,
        battery=battery,
        participation=(ok / selected) if selected else None,
        bytes_down=float(np.nansum(c["bits_down_payload"])) / 8 if selected else 0.0,
        bytes_up=float(np.nansum(c["bits_up_payload"])) / 8 if selected else 0.0,
        mean_round_s=float(np.nanmean(rs)) if len(rs) else None,
        final_bits_down=bits_down,
        final_bits_up=bits_up,
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
