"""Assemble the pages: ``fedsim report`` (one run) and ``fedsim compare`` (several runs).

A page is a list of blocks (headings, tables, figures) built here from the metrics and
figures modules, then rendered to report.html (self-contained) and report.md by
:mod:`fedsim.reporting.page`.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import InputError
from fedsim.reporting import figures, metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.run import Run, load_run, resolve_group


def _version() -> str:
    try:
        from fedsim import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "?"


def _prepare_output(output: Path) -> Path:
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError("output must be a folder, but a file has that name", file=output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}",
                         file=output) from None
    return output


# ---------------------------------------------------------------------------------------------
# Scenario description
# ---------------------------------------------------------------------------------------------
def _dataset_text(sc: dict[str, Any]) -> str:
    data = sc.get("data") or {}
    text = str(data.get("dataset", "?"))
    part = data.get("partition") or {}
    if isinstance(part, dict) and part:
        kind = part.get("kind") or part.get("name") or part.get("method")
        alpha = part.get("alpha")
        bits = [str(kind)] if kind else []
        if alpha is not None:
            bits.append(f"alpha = {alpha}")
        if bits:
            text += f" ({', '.join(bits)})"
    return text


def _model_text(run: Run) -> str:
    sc = run.scenario
    m = run.summary.get("model") or {}
    name = m.get("name") or (sc.get("model") or {}).get("name", "?")
    extra = []
    if m.get("params"):
        extra.append(f"{int(m['params']):,} parameters")
    if m.get("quantized_layers"):
        extra.append(f"{m['quantized_layers']} quantized layers")
    return f"{name}" + (f" ({', '.join(extra)})" if extra else "")


_SHARED_ALG_KEYS = ("lr", "momentum", "weight_decay", "local_epochs", "batch_size")


def _algorithm_text(run: Run) -> str:
    a = run.scenario.get("algorithm") or {}
    keys = [k for k in _SHARED_ALG_KEYS if k in a]
    own = [k for k in a if k not in (*_SHARED_ALG_KEYS, "name", "lr_milestones", "lr_gamma")]
    parts = [f"{k} = {a[k]}" for k in (*keys, *own)]
    if a.get("lr_milestones"):
        parts.append(f"lr x{a.get('lr_gamma')} at rounds {a['lr_milestones']}")
    return f"{style.method_name(run.algorithm)}" + (f": {', '.join(parts)}" if parts else "")


def _selection_text(run: Run) -> str:
    s = run.scenario.get("selection") or {}
    n = metrics.fleet_size(run)
    if s.get("per_round"):
        who = f"{s['per_round']} of {n} clients per round"
    elif s.get("fraction"):
        who = f"fraction {s['fraction']} of {n} clients per round"
    else:
        who = f"all {n} clients every round"
    dl = s.get("deadline_s")
    return who + (f", deadline {style.fmt_time(float(dl))}" if dl else ", no deadline")


def _rounds_text(run: Run) -> str:
    planned = run.planned_rounds
    done = run.n_rounds
    return f"{done} completed" + (f" of {planned} planned" if planned is not None else "")


def _fleet_text(run: Run) -> str:
    groups = metrics.fleet_groups(run)
    return ", ".join(f"{g['count']}x {g['group']}" for g in groups) or "?"


def _scenario_rows(run: Run) -> list[list[str]]:
    sc = run.scenario
    rows = [
        ["scenario", run.scenario_name],
        ["method", _algorithm_text(run)],
        ["data", _dataset_text(sc)],
        ["model", _model_text(run)],
        ["fleet", f"{metrics.fleet_size(run)} clients: {_fleet_text(run)}"],
        ["selection", _selection_text(run)],
        ["rounds", _rounds_text(run)],
        ["seed", str(run.seed)],
        ["run folder", f"`{run.path}`"],
    ]
    if sc.get("description"):
        rows.insert(1, ["description", str(sc["description"]).strip()])
    return rows


def _fleet_table(run: Run) -> pg.Table:
    groups = metrics.fleet_groups(run)
    rows, swatches = [], {}
    for i, g in enumerate(groups):
        ov = g["override"]
        rows.append([
            g["group"], g["profile"], style.class_name(g["device_class"]) or "(never selected)",
            str(g["count"]), f"{g['budget_bits']:g}" if isinstance(g["budget_bits"], int | float)
            else str(g["budget_bits"]),
            str(g["link"]),
            ", ".join(f"{k}={v}" for k, v in ov.items()) if ov else "",
        ])
        if g["device_class"]:
            swatches[(i, 2)] = style.class_color(g["device_class"])
    return pg.Table(["group", "profile", "device class", "clients", "bit budget", "link",
                     "override"], rows, caption="Fleet (from scenario.yaml)", align="lllrrll",
                    swatches=swatches)


# ---------------------------------------------------------------------------------------------
# Headline numbers
# ---------------------------------------------------------------------------------------------
def _cards(h: metrics.Headline) -> pg.Cards:
    def rnd(r: int | None) -> str:
        return f"round {r}" if r is not None else ""

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 or word == 'infeasible' else 's'}"

    fails = [n(c, w) for c, w in ((h.stragglers, "straggler"), (h.infeasible, "infeasible"),
                                  (h.dropouts, "dropout")) if c]
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
        ("Stragglers / dropouts", f"{h.stragglers} / {h.dropouts}",
         ", ".join(fails) if fails else "every selected client reported"),
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


# ---------------------------------------------------------------------------------------------
# Tables per device class
# ---------------------------------------------------------------------------------------------
def _energy_table(stats: list[metrics.Stats], total_j: float) -> pg.Table:
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


def _fairness_table(run: Run, stats: list[metrics.Stats]) -> pg.Table:
    acc = metrics.class_accuracy(run)
    traj = {t.device_class: t for t in metrics.bit_trajectories(run)}
    sel_total = sum(s.samples_selected for s in stats) or 1.0
    agg_total = sum(s.samples_aggregated for s in stats) or 1.0
    rows, sw = [], {}
    for i, s in enumerate(stats):
        t = traj.get(s.device_class)
        bits = f"{t.mean[-1]:.2f}" if t is not None and len(t.mean) else "—"
        other = s.client_rounds - s.aggregated - s.status.get("straggler", 0) - s.status.get(
            "infeasible", 0)
        row = [
            style.class_name(s.device_class), str(s.client_rounds),
            style.fmt_pct(s.participation, 1), str(s.status.get("straggler", 0)),
            str(s.status.get("infeasible", 0)), str(other),
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


# ---------------------------------------------------------------------------------------------
# energy.csv
# ---------------------------------------------------------------------------------------------
ENERGY_COLUMNS = [
    "scope", "client_id", "device_class", "device", "group", "clients", "client_rounds",
    "aggregated", "stragglers", "infeasible", "dropouts", "compute_j", "downlink_j",
    "uplink_j", "idle_j", "energy_j", "busy_s", "compute_s", "comm_s", "idle_s",
    "bytes_down", "bytes_up",
]


def _num(v: float) -> str:
    v = round(float(v), 6)
    return str(int(v)) if v.is_integer() else repr(v)


def _energy_row(scope: str, s: metrics.Stats, cid: str = "") -> list[str]:
    strag = s.status.get("straggler", 0)
    infeas = s.status.get("infeasible", 0)
    return [
        scope, cid, s.device_class, s.device, s.group, str(len(s.clients)),
        str(s.client_rounds), str(s.aggregated), str(strag), str(infeas),
        str(s.client_rounds - s.aggregated - strag - infeas),
        *[_num(s.energy[p]) for p in ("compute", "downlink", "uplink", "idle")],
        _num(s.energy_j), _num(s.busy_s), _num(s.compute_s), _num(s.comm_s), _num(s.idle_s),
        _num(s.bytes_down), _num(s.bytes_up),
    ]


def write_energy_csv(run: Run, path: Path) -> None:
    """Per client, per device class and fleet: joules by phase, seconds, bytes."""
    clients = metrics.client_stats(run)
    classes = metrics.class_stats(run)
    fleet = metrics.Stats(key="fleet", device_class="")
    for s in classes:
        fleet.clients |= s.clients
        fleet.client_rounds += s.client_rounds
        for k, v in s.status.items():
            fleet.status[k] += v
        for p in fleet.energy:
            fleet.energy[p] += s.energy[p]
        for a in ("compute_s", "comm_s", "idle_s", "bytes_down", "bytes_up"):
            setattr(fleet, a, getattr(fleet, a) + getattr(s, a))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(ENERGY_COLUMNS)
        for s in clients:
            w.writerow(_energy_row("client", s, s.key))
        for s in classes:
            w.writerow(_energy_row("device_class", s))
        w.writerow(_energy_row("fleet", fleet))


# ---------------------------------------------------------------------------------------------
# Definitions shown on every page
# ---------------------------------------------------------------------------------------------
DEFINITIONS = [
    ("Test accuracy", "accuracy of the global (server) model on the test split after each "
     "round's aggregation (rounds.csv `accuracy`)."),
    ("Simulated wall-clock time", "the simulator's clock at the end of a round, from the "
     "hardware and network models; never the host's time (rounds.csv `sim_time_s`)."),
    ("Fleet energy", "joules spent by every selected client in every round, all phases; "
     "cumulative (rounds.csv `energy_j`). Clients that were not selected are not charged."),
    ("Energy phases", "compute = local training at the device's active power; downlink / "
     "uplink = radio energy of receiving the model and sending the update; idle = waiting "
     "at idle power after the upload until the round closes. A straggler is charged the part "
     "of the phase it finished before the deadline; an infeasible client is charged nothing."),
    ("Energy per accuracy point", "fleet energy divided by the final accuracy in percentage "
     "points (J/pp)."),
    ("Participation", "share of selected client-rounds whose update reached the server and "
     "was aggregated."),
    ("Straggler", "a selected client that had not delivered its update when the round "
     "deadline fired (status `straggler`)."),
    ("Infeasible", "a selected client whose training configuration did not fit its usable "
     "memory; not scheduled (status `infeasible`)."),
    ("Dropout", "a client lost during the round (status dropout, offline or battery)."),
    ("Busy / idle time", "busy = compute + communication seconds; idle = seconds waiting for "
     "the round to close after the upload."),
    ("Average bits", "parameter-weighted mean bit-width per weight of a client's model: sent "
     "by the server (`avg_bits`) or reported back after local precision reduction "
     "(`avg_bits_up`); 32 means float."),
]


def _footer(run_paths: Sequence[Path]) -> str:
    where = ", ".join(f"`{p}`" for p in run_paths[:6]) + (" ..." if len(run_paths) > 6 else "")
    return f"Generated by fedsim {_version()} from {where}. Figures use simulated quantities only."


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------
def build_report(run: Run) -> tuple[list[pg.Block], str, str]:
    h = metrics.headline(run)
    stats = metrics.class_stats(run)
    method = style.method_name(run.algorithm)
    data = (run.scenario.get("data") or {}).get("dataset", "?")
    model = (run.summary.get("model") or {}).get("name") or (run.scenario.get("model") or {}
                                                               ).get("name", "?")
    title = f"fedsim report: {run.run_id}"
    subtitle = (f"{method} on {data} / {model} · scenario {run.scenario_name} · seed {run.seed}"
                f" · {h.n_clients} clients in {len(run.device_classes)} device classes")
    no_rounds = h.rounds_done == 0
    blocks: list[pg.Block] = []
    if no_rounds:
        blocks.append(pg.Note(
            "This run completed zero rounds: there is no accuracy, time or energy curve to "
            "show. The sections below say what the run recorded.", kind="warn"))

    blocks += [pg.Heading("Scenario", "scenario"),
               pg.Table(["", ""], _scenario_rows(run), align="ll", show_header=False),
               _fleet_table(run)]

    blocks += [pg.Heading("Headline numbers", "headline"), _cards(h)]

    blocks.append(pg.Heading("Accuracy against time and energy", "accuracy"))
    if no_rounds:
        blocks.append(pg.Note("No completed rounds: no accuracy curve."))
    elif not np.isfinite(run.rounds["accuracy"]).any():
        blocks.append(pg.Note("This run recorded no test accuracy (rounds.csv `accuracy` is "
                              "empty, e.g. a system-only run): no accuracy curve."))
    else:
        series = [figures.Series(method, [run], style.method_color(run.algorithm),
                                 marker=style.method_marker(run.algorithm))]
        blocks.append(pg.Figure(
            "fig-accuracy-time",
            figures.accuracy_curves(series, "sim_time_s", mark_best=True,
                                    title="Test accuracy vs simulated wall-clock time"),
            "Accuracy of the global model after each round against the simulated clock at "
            "the end of that round (the slowest selected client, or the deadline, sets each "
            "round's length). The star marks the best round.",
            "Accuracy vs simulated wall-clock time"))
        blocks.append(pg.Figure(
            "fig-accuracy-energy",
            figures.accuracy_curves(series, "energy_j", mark_best=True,
                                    title="Test accuracy vs cumulative fleet energy"),
            "Accuracy against the energy the whole fleet had spent by the end of each round "
            "(compute + downlink + uplink + idle, all selected clients).",
            "Accuracy vs cumulative fleet energy"))

    blocks.append(pg.Heading("Energy by device class and phase", "energy"))
    if not h.client_rounds:
        blocks.append(pg.Note("No client-rounds recorded: no energy to split."))
    else:
        blocks.append(pg.Figure(
            "fig-energy-classes", figures.energy_by_class(run),
            "(a) Total joules each device class spent over the run, split into compute, "
            "downlink, uplink and idle. (b) The same per selected client-round, which compares "
            "devices independently of how many there are and how often they were selected. "
            "(c) Each class's energy split in percent, readable even for a class whose bars "
            "are too small to see above.",
            "Energy per device class, split by phase"))
        blocks.append(_energy_table(stats, h.energy_j))
        blocks.append(pg.Para(
            "Per-client numbers (joules by phase, busy and idle seconds, bytes up and down) "
            "are in `energy.csv` beside this page."))

    blocks.append(pg.Heading("Per-client timeline", "timeline"))
    tl = metrics.timeline(run) if not no_rounds else None
    if tl is None or not tl.rounds or not tl.clients:
        blocks.append(pg.Note("No client activity recorded in events.jsonl: no timeline."))
    else:
        shown = (f"all {tl.total_clients} clients selected in them"
                 if len(tl.clients) == tl.total_clients
                 else f"{len(tl.clients)} of the {tl.total_clients} clients selected in them "
                 "(failures first, then a mix of device classes)")
        rounds_txt = (f"Round {tl.rounds[0]}" if len(tl.rounds) == 1
                      else f"Rounds {tl.rounds[0]}–{tl.rounds[-1]}")
        blocks.append(pg.Figure(
            "fig-timeline", figures.client_timeline(run, tl),
            f"{rounds_txt}; {shown}. Each bar is one phase of a client's round "
            "(from events.jsonl); grey is the wait after the upload until the round closes. "
            "Hatched bars were cut short (deadline or dropout) and markers say why; a dotted "
            "line is a client that was selected but not scheduled. Rows are grouped by device "
            "class.",
            "Per-client timeline"))

    blocks.append(pg.Heading("Bit-widths", "bits"))
    if metrics.has_quantized_bits(run) and not no_rounds:
        bm = metrics.bit_matrix(run)
        if bm is not None:
            blocks.append(pg.Figure(
                "fig-bits-heatmap", figures.bit_heatmap(run, bm),
                f"Bits per weight of each quantized layer for each client selected in the last "
                f"round (round {bm.round}), grouped by device class. 32 would be a float layer; "
                "a blank cell ('–') is a layer the client did not report (straggler, "
                "infeasible, dropout).",
                "Per-layer bit-widths, last round"))
        blocks.append(pg.Figure(
            "fig-bits-trajectory", figures.bit_trajectories(run),
            "Mean of the clients' average bits per weight in each device class and round "
            "(line), with the range across the class's clients (band); dotted lines are the "
            "class's bit budget. (a) what the server sent, (b) what clients reported back "
            "after local precision reduction.",
            "Bit-width trajectory over rounds"))
    else:
        blocks.append(pg.Note(
            "Every layer of every client stayed at 32-bit float in this run (bits.csv), so "
            "there is no bit-width allocation to show." if not no_rounds
            else "No completed rounds: no bit-widths."))

    blocks.append(pg.Heading("Fairness across device classes", "fairness"))
    if not h.client_rounds:
        blocks.append(pg.Note("No client-rounds recorded: no participation to show."))
    else:
        has_acc = metrics.class_accuracy(run) is not None
        blocks.append(pg.Figure(
            "fig-fairness", figures.fairness(run),
            "(a) What happened to each device class's selected client-rounds. "
            + ("(b) Test accuracy of the models the clients of each class held in the last "
               "round, against the global model's."
               if has_acc else
               "(b) Each class's share of the training samples selected and of those that "
               "reached the server: a class that straggles or does not fit loses weight in "
               "the global model. (This run did not record per-client accuracy.)"),
            "Participation and weight per device class"))
        blocks.append(_fairness_table(run, stats))

    blocks += [pg.Heading("Definitions", "definitions"), pg.Definitions(DEFINITIONS)]
    return blocks, title, subtitle


def write_report(run_dir: str | Path, output: Path | None = None) -> Path:
    """Write report.html, report.md, figures/*.png and energy.csv; return report.html's path.

    ``output`` defaults to ``<run_dir>/report/``.
    """
    run = load_run(run_dir)
    out = _prepare_output(Path(output) if output is not None else run.path / "report")
    blocks, title, subtitle = build_report(run)
    try:
        path = pg.write_page(blocks, out, "report", title, subtitle, _footer([run.path]))
        write_energy_csv(run, out / "energy.csv")
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc.strerror or exc}", file=out) from None
    return path


# ---------------------------------------------------------------------------------------------
# Several runs
# ---------------------------------------------------------------------------------------------
class Group:
    """One compared entry: a run, or a seeds parent's runs (drawn as mean and band)."""

    def __init__(self, path: Path, runs: list[Run]) -> None:
        self.path = path
        self.runs = runs
        self.label = ""
        self.series: figures.Series | None = None

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def algorithm(self) -> str:
        return self.first.algorithm


def _labels(groups: list[Group]) -> None:
    """Method names, made unique by scenario, fleet or run id when methods repeat."""
    counts = Counter(g.algorithm for g in groups)
    for g in groups:
        base = style.method_name(g.algorithm)
        if counts[g.algorithm] == 1:
            g.label = base
            continue
        same = [o for o in groups if o.algorithm == g.algorithm]
        if len({o.first.scenario_name for o in same}) == len(same):
            g.label = f"{base} · {g.first.scenario_name}"
        elif len({_fleet_text(o.first) for o in same}) == len(same):
            g.label = f"{base} · {_fleet_text(g.first)}"
        else:
            g.label = f"{base} · {g.first.run_id if len(g.runs) == 1 else g.path.name}"
    seen: Counter[str] = Counter()
    for g in groups:
        k = seen[g.algorithm]
        seen[g.algorithm] += 1
        g.series = figures.Series(
            g.label, g.runs, style.method_color(g.algorithm),
            linestyle=style.LINESTYLES[k % len(style.LINESTYLES)],
            marker=style.method_marker(g.algorithm),
        )


_SAME_UNIT = (style.fmt_energy, style.fmt_time, style.fmt_bytes, style.fmt_j_per_point)


def _agg(values: list[float | None], fmt: Any) -> tuple[str, float | None]:
    """Text and sort key of a value over a group's runs: mean ± sd for several seeds."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals or len(vals) < len(values):
        return "—", None
    mean = float(np.mean(vals))
    if len(vals) == 1:
        return fmt(mean), mean
    sd = float(np.std(vals))
    sd_text = fmt(sd, mean) if fmt in _SAME_UNIT else fmt(sd)
    return f"{fmt(mean)} ± {sd_text}", mean


def _compare_table(groups: list[Group]) -> tuple[pg.Table, float | None]:
    heads = [[metrics.headline(r) for r in g.runs] for g in groups]
    best_accs = [h.best_accuracy for hs in heads for h in hs]
    target = None
    if best_accs and all(a is not None for a in best_accs):
        target = math.floor(min(best_accs) * 1000) / 1000  # type: ignore[type-var]
    rows: list[tuple[str, list[tuple[str, float | None]], str]] = []

    def add(label: str, get: Any, fmt: Any, better: str = "") -> None:
        rows.append((label, [_agg([get(h) for h in hs], fmt) for hs in heads], better))

    add("final accuracy", lambda h: h.final_accuracy, style.fmt_pct, "max")
    add("best accuracy", lambda h: h.best_accuracy, style.fmt_pct, "max")
    add("simulated time", lambda h: h.sim_time_s, style.fmt_time, "min")
    add("fleet energy", lambda h: h.energy_j, style.fmt_energy, "min")
    add("energy per accuracy point", lambda h: h.j_per_point, style.fmt_j_per_point, "min")
    if target is not None:
        label = f"{100 * target:.1f} %"
        rows.append((f"time to reach {label}", [_agg(
            [metrics.reach(r, target)[0] for r in g.runs], style.fmt_time) for g in groups],
            "min"))
        rows.append((f"energy to reach {label}", [_agg(
            [metrics.reach(r, target)[1] for r in g.runs], style.fmt_energy) for g in groups],
            "min"))
        rows.append((f"rounds to reach {label}", [_agg(
            [(lambda x: None if x is None else x + 1)(metrics.reach(r, target)[2])
             for r in g.runs], style.fmt_num) for g in groups], "min"))
    add("participation", lambda h: h.participation, lambda v: style.fmt_pct(v, 1), "max")
    add("stragglers (client-rounds)", lambda h: float(h.stragglers), style.fmt_num, "")
    add("infeasible (client-rounds)", lambda h: float(h.infeasible), style.fmt_num, "")
    add("dropouts (client-rounds)", lambda h: float(h.dropouts), style.fmt_num, "")
    add("data down", lambda h: h.bytes_down, style.fmt_bytes, "min")
    add("data up", lambda h: h.bytes_up, style.fmt_bytes, "min")
    add("avg bits, last round (down)", lambda h: h.final_bits_down, lambda v: f"{v:.2f}", "")
    add("avg bits, last round (up)", lambda h: h.final_bits_up, lambda v: f"{v:.2f}", "")
    add("rounds completed", lambda h: float(h.rounds_done), style.fmt_num, "")

    table_rows, bold = [], set()
    for i, (label, cells, better) in enumerate(rows):
        table_rows.append([label, *[c[0] for c in cells]])
        keys = [c[1] for c in cells]
        if better and len(groups) > 1 and all(k is not None for k in keys):
            best = max(keys) if better == "max" else min(keys)  # type: ignore[type-var]
            if sum(1 for k in keys if k == best) < len(keys):
                for j, k in enumerate(keys):
                    if k == best:
                        bold.add((i, j + 1))
    table = pg.Table(["metric", *[g.label for g in groups]], table_rows, bold=bold,
                     caption="Headline numbers side by side (best of each row in bold"
                     + ("; mean ± sd over seeds" if any(len(g.runs) > 1 for g in groups) else "")
                     + ")", head_swatches=_head_swatches(groups))
    return table, target


def _runs_table(groups: list[Group]) -> pg.Table:
    fields = [
        ("scenario", lambda r: r.scenario_name),
        ("method", _algorithm_text),
        ("data", lambda r: _dataset_text(r.scenario)),
        ("model", _model_text),
        ("fleet", lambda r: f"{metrics.fleet_size(r)} clients: {_fleet_text(r)}"),
        ("selection", _selection_text),
        ("rounds", _rounds_text),
    ]
    rows = []
    for name, get in fields:
        rows.append([name, *[get(g.first) for g in groups]])
    rows.append(["seed" + ("s" if any(len(g.runs) > 1 for g in groups) else ""),
                 *[", ".join(str(r.seed) for r in g.runs) for g in groups]])
    rows.append(["run folder", *[f"`{g.path}`" for g in groups]])
    return pg.Table(["", *[g.label for g in groups]], rows, align="l" * (len(groups) + 1),
                    caption="What was run", head_swatches=_head_swatches(groups))


def _head_swatches(groups: list[Group]) -> dict[int, str]:
    return {j + 1: g.series.color for j, g in enumerate(groups) if g.series is not None}


def write_compare_csv(groups: list[Group], path: Path) -> None:
    cols = ["label", "run_id", "run_dir", "algorithm", "scenario", "seed", "rounds_done",
            "final_accuracy", "best_accuracy", "sim_time_s", "energy_j", "j_per_point",
            "participation", "stragglers", "infeasible", "dropouts", "bytes_down", "bytes_up"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for g in groups:
            for r in g.runs:
                h = metrics.headline(r)
                w.writerow([g.label, r.run_id, str(r.path), r.algorithm, r.scenario_name,
                            r.seed, h.rounds_done,
                            *["" if v is None else _num(v) for v in (
                                h.final_accuracy, h.best_accuracy, h.sim_time_s, h.energy_j,
                                h.j_per_point, h.participation)],
                            h.stragglers, h.infeasible, h.dropouts, _num(h.bytes_down),
                            _num(h.bytes_up)])


def build_compare(groups: list[Group]) -> tuple[list[pg.Block], str, str]:
    _labels(groups)
    series = [g.series for g in groups if g.series is not None]
    title = f"fedsim comparison: {' vs '.join(g.label for g in groups)}"
    if len(title) > 110:
        title = f"fedsim comparison of {len(groups)} runs"
    datasets = sorted({str((r.scenario.get('data') or {}).get('dataset', '?'))
                       for g in groups for r in g.runs})
    subtitle = (f"{len(groups)} entries, {sum(len(g.runs) for g in groups)} run folders · "
                f"data: {', '.join(datasets)}")
    blocks: list[pg.Block] = []
    empty = [g.label for g in groups if all(r.n_rounds == 0 for r in g.runs)]
    if empty:
        blocks.append(pg.Note(f"Zero completed rounds in: {', '.join(empty)}. These runs have "
                              "no curve below.", kind="warn"))
    blocks += [pg.Heading("Runs", "scenario"), _runs_table(groups)]
    table, target = _compare_table(groups)
    blocks += [pg.Heading("Headline numbers", "headline"), table]
    if target is not None:
        blocks.append(pg.Para(
            f"Time, energy and rounds to reach {100 * target:.1f} % (the best accuracy of the "
            "weakest entry, so every entry reaches it) count from the start of the run to the "
            "end of the first round at or above it."))

    any_rounds = any(r.n_rounds for g in groups for r in g.runs)
    any_acc = any(np.isfinite(r.rounds["accuracy"]).any() for g in groups for r in g.runs
                  if r.n_rounds)
    blocks.append(pg.Heading("Accuracy against time and energy", "accuracy"))
    if not any_acc:
        blocks.append(pg.Note("No run recorded a test accuracy: no accuracy curves."))
    else:
        band = any(len(g.runs) > 1 for g in groups)
        band_txt = (" Entries with several seeds show the mean (line) and ± one standard "
                    "deviation (band) over the x range every seed covers." if band else "")
        blocks.append(pg.Figure(
            "fig-accuracy-time",
            figures.accuracy_curves(series, "sim_time_s",
                                    title="Test accuracy vs simulated wall-clock time"),
            "All runs on shared axes: accuracy of the global model against the simulated "
            "clock." + band_txt, "Accuracy vs simulated wall-clock time"))
        blocks.append(pg.Figure(
            "fig-accuracy-energy",
            figures.accuracy_curves(series, "energy_j",
                                    title="Test accuracy vs cumulative fleet energy"),
            "All runs on shared axes: accuracy against the energy the whole fleet had spent "
            "(compute + downlink + uplink + idle)." + band_txt,
            "Accuracy vs cumulative fleet energy"))
        blocks.append(pg.Figure(
            "fig-accuracy-round",
            figures.accuracy_curves(series, "round", title="Test accuracy per round",
                                    height=3.2),
            "Accuracy against the round number, for reference: per-round progress ignores how "
            "long and how costly each round was.", "Accuracy vs round"))

    blocks.append(pg.Heading("Energy by phase and device class", "energy"))
    if not any(len(r.clients) for g in groups for r in g.runs):
        blocks.append(pg.Note("No client-rounds recorded: no energy to split."))
    else:
        blocks.append(pg.Figure(
            "fig-energy-classes", figures.compare_energy(series),
            "(a) Each run's fleet energy split into compute, downlink, uplink and idle. "
            "(b) Mean energy of one selected client-round per device class.",
            "Energy by phase and device class"))
        blocks.append(pg.Heading("Fairness across device classes", "fairness"))
        blocks.append(pg.Figure(
            "fig-fairness", figures.compare_participation(series),
            "Share of each device class's selected client-rounds whose update was aggregated.",
            "Participation per device class"))

    quantized = [g for g in groups if any(metrics.has_quantized_bits(r) for r in g.runs)]
    blocks.append(pg.Heading("Bit-widths", "bits"))
    if quantized and any_rounds:
        blocks.append(pg.Figure(
            "fig-bits-trajectory", figures.compare_bits([g.series for g in quantized
                                                         if g.series is not None]),
            "Mean over each round's selected clients of their average bits per weight: "
            "solid, sent by the server; dashed, reported back by the clients that were "
            "aggregated. Float runs (32 bits) are left out.",
            "Average bit-width over rounds"))
    else:
        blocks.append(pg.Note("No compared run used quantized layers: no bit-widths to show."))
    blocks.append(pg.Para(
        "Per-client timelines and per-layer bit-width heatmaps are in each run's own report "
        "(`fedsim report RUN_DIR`)."))
    blocks += [pg.Heading("Definitions", "definitions"), pg.Definitions(DEFINITIONS)]
    return blocks, title, subtitle


def write_compare(run_dirs: Sequence[str | Path], output: str | Path) -> Path:
    """Compare several runs (a seeds parent counts as one entry); return compare.html's path.

    Writes compare.html, compare.md, compare.csv and figures/*.png into ``output``.
    """
    if not run_dirs:
        raise InputError("give at least one run folder to compare")
    groups = []
    seen: set[Path] = set()
    for d in run_dirs:
        paths = resolve_group(Path(d))
        key = Path(d).resolve()
        if key in seen:
            raise InputError("given twice", file=d)
        seen.add(key)
        groups.append(Group(Path(d), [load_run(p) for p in paths]))
    out = _prepare_output(Path(output))
    blocks, title, subtitle = build_compare(groups)
    try:
        path = pg.write_page(blocks, out, "compare", title, subtitle,
                             _footer([g.path for g in groups]))
        write_compare_csv(groups, out / "compare.csv")
    except OSError as exc:
        raise InputError(f"cannot write the comparison: {exc.strerror or exc}",
                         file=out) from None
    return path
