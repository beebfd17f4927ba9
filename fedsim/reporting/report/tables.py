"""The tables and headline cards of a single-run report."""

from __future__ import annotations

from fedsim.reporting import metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.describe import SETUP_FIELDS
from fedsim.reporting.run import Run


def scenario_rows(run: Run) -> list[list[str]]:
    rows = [[name, get(run)] for name, get in SETUP_FIELDS]
    rows += [["seed", str(run.seed)], ["run folder", f"`{run.path}`"]]
    if run.scenario.get("description"):
        rows.insert(1, ["description", str(run.scenario["description"]).strip()])
    return rows


def fleet_table(run: Run) -> pg.Table:
    groups = metrics.fleet_groups(run)
    rows, swatches = [], {}
    for i, g in enumerate(groups):
        ov = g["override"]
        rows.append([
            g["group"], g["profile"], style.class_name(g["device_class"]) or "(never selected)",
            str(g["count"]), g["budget_bits"],
            str(g["link"]),
            ", ".join(f"{k}={v}" for k, v in ov.items()) if ov else "",
        ])
        if g["device_class"]:
            swatches[(i, 2)] = style.class_color(g["device_class"])
    return pg.Table(["group", "profile", "device class", "clients", "bit budget", "link",
                     "override"], rows, caption="Fleet (from scenario.yaml)", align="lllrrll",
                    swatches=swatches)


def _failures_text(h: metrics.Headline) -> str:
    """The failures in words ("2 stragglers, 1 infeasible"), or that nothing failed."""

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 or word == 'infeasible' else 's'}"

    fails = [n(c, w) for c, w in ((h.stragglers, "straggler"), (h.infeasible, "infeasible"),
                                  (h.dropouts, "dropout")) if c]
    fails += [f"{c} {w}" for c, w in ((h.offline, "offline"), (h.battery, "lost to battery"))
              if c]
    return ", ".join(fails) if fails else "every selected client reported"


def cards(h: metrics.Headline) -> pg.Cards:
    def rnd(r: int | None) -> str:
        return f"round {r}" if r is not None else ""

    items = [
        ("Final accuracy", style.fmt_pct(h.final_accuracy), rnd(h.final_round)),
        ("Best accuracy", style.fmt_pct(h.best_accuracy), rnd(h.best_round)),
        ("Simulated time", style.fmt_time(h.sim_time_s),
         f"mean round {style.fmt_time(h.mean_round_s)}" if h.mean_round_s else ""),
        ("Fleet energy", style.fmt_energy(h.energy_j), "all clients, all phases"),
        ("Energy per accuracy point", style.fmt_j_per_point(h.j_per_point),
         "fleet energy / final accuracy (%)"),
        ("Participation", style.fmt_pct(h.participation, 1),
         f"{h.aggregated} of {h.client_rounds} client-rounds aggregated"),
        ("Stragglers / lost", f"{h.stragglers} / {h.lost}", _failures_text(h)),
        ("Data down / up", f"{style.fmt_bytes(h.bytes_down)} / {style.fmt_bytes(h.bytes_up)}",
         "model payloads received / sent by clients"),
    ]
    if h.final_bits_down is not None:
        up = f" / {h.final_bits_up:.2f} up" if h.final_bits_up is not None else ""
        items.append(("Average bits (last round)", f"{h.final_bits_down:.2f}",
                      f"per weight, down{up}"))
    items.append(("Rounds", f"{h.rounds_done}" + (
        f" / {h.rounds_planned}" if h.rounds_planned is not None else ""), "completed / planned"))
    return pg.Cards(items)


def energy_table(stats: list[metrics.Stats], total_j: float) -> pg.Table:
    rows, sw = [], {}
    for i, s in enumerate(stats):
        e = s.energy_j
        rows.append([
            style.class_name(s.device_class), str(len(s.clients)), str(s.client_rounds),
            *[style.fmt_energy(s.energy[p]) for p in style.PHASES],
            style.fmt_energy(e), style.fmt_pct(e / total_j if total_j else None, 1),
            style.fmt_energy(e / s.client_rounds if s.client_rounds else None),
            style.fmt_time(s.busy_s), style.fmt_time(s.idle_s),
            f"{style.fmt_bytes(s.bytes_down)} / {style.fmt_bytes(s.bytes_up)}",
        ])
        sw[(i, 0)] = style.class_color(s.device_class)
    return pg.Table(
        ["device class", "clients", "client-rounds", "compute", "downlink", "uplink", "idle",
         "total energy", "share of fleet",
         "per client-round", "busy time", "idle time", "data down / up"],
        rows, caption="Energy, time and traffic per device class (sums over all rounds)",
        swatches=sw,
    )


def fairness_table(run: Run, stats: list[metrics.Stats]) -> pg.Table:
    acc = metrics.class_accuracy(run)
    traj = {t.device_class: t for t in metrics.bit_trajectories(run)}
    sel_total = sum(s.samples_selected for s in stats) or 1.0
    agg_total = sum(s.samples_aggregated for s in stats) or 1.0
    rows, sw = [], {}
    for i, s in enumerate(stats):
        t = traj.get(s.device_class)
        bits = f"{t.mean[-1]:.2f}" if t is not None and len(t.mean) else "—"
        row = [
            style.class_name(s.device_class), str(s.client_rounds),
            style.fmt_pct(s.participation, 1), str(s.stragglers),
            str(s.infeasible), str(s.dropouts),
            style.fmt_pct(s.samples_selected / sel_total, 1),
            style.fmt_pct(s.samples_aggregated / agg_total, 1), bits,
        ]
        if acc is not None:
            row.append(style.fmt_pct(acc.get(s.device_class)))
        rows.append(row)
        sw[(i, 0)] = style.class_color(s.device_class)
    header = ["device class", "client-rounds", "participation", "stragglers", "infeasible",
              "dropouts", "samples selected", "samples aggregated", "avg bits (last round)"]
    if acc is not None:
        header.append("accuracy (last round)")
    return pg.Table(header, rows, caption="Participation and weight in the global model "
                    "per device class", swatches=sw)
