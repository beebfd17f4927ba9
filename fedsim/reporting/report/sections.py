"""The figure sections of a single-run report, one function each.

Every section always has its heading (the page's table of contents is the same for every
run); when the run has nothing to draw, a note says why instead of a blank figure.
"""

from __future__ import annotations

import numpy as np

from fedsim.reporting import figures, metrics, style
from fedsim.reporting import page as pg
from fedsim.reporting.report.tables import energy_table, fairness_table
from fedsim.reporting.run import Run


def accuracy_section(run: Run, no_rounds: bool) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Accuracy against time and energy", "accuracy")]
    if no_rounds:
        blocks.append(pg.Note("No completed rounds: no accuracy curve."))
        return blocks
    if not np.isfinite(run.rounds["accuracy"]).any():
        blocks.append(pg.Note("This run recorded no test accuracy (rounds.csv `accuracy` is "
                              "empty, e.g. a system-only run): no accuracy curve."))
        return blocks
    series = [figures.Series(style.method_name(run.algorithm), [run],
                             style.method_color(run.algorithm),
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
    return blocks


def energy_section(run: Run, h: metrics.Headline, stats: list[metrics.Stats]
                   ) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Energy by device class and phase", "energy")]
    if not h.client_rounds:
        blocks.append(pg.Note("No client-rounds recorded: no energy to split."))
        return blocks
    blocks.append(pg.Figure(
        "fig-energy-classes", figures.energy_by_class(run),
        "(a) Total joules each device class spent over the run, split into compute, "
        "downlink, uplink and idle. (b) The same per selected client-round, which compares "
        "devices independently of how many there are and how often they were selected. "
        "(c) Each class's energy split in percent, readable even for a class whose bars "
        "are too small to see above.",
        "Energy per device class, split by phase"))
    blocks.append(energy_table(stats, h.energy_j))
    blocks.append(pg.Para(
        "Per-client numbers (joules by phase, busy and idle seconds, bytes up and down) "
        "are in `energy.csv` beside this page."))
    return blocks


def timeline_section(run: Run, no_rounds: bool) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Per-client timeline", "timeline")]
    tl = metrics.timeline(run) if not no_rounds else None
    if tl is None or not tl.rounds or not tl.clients:
        blocks.append(pg.Note("No client activity recorded in events.jsonl: no timeline."))
        return blocks
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
    return blocks


def bits_section(run: Run, no_rounds: bool) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Bit-widths", "bits")]
    if not metrics.has_quantized_bits(run) or no_rounds:
        blocks.append(pg.Note(
            "Every layer of every client stayed at 32-bit float in this run (bits.csv), so "
            "there is no bit-width allocation to show." if not no_rounds
            else "No completed rounds: no bit-widths."))
        return blocks
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
    return blocks


def fairness_section(run: Run, h: metrics.Headline, stats: list[metrics.Stats]
                     ) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Fairness across device classes", "fairness")]
    if not h.client_rounds:
        blocks.append(pg.Note("No client-rounds recorded: no participation to show."))
        return blocks
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
    blocks.append(fairness_table(run, stats))
    return blocks
