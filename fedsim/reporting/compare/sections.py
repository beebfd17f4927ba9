"""The figure sections of a comparison, one function each.

As on the single-run page, a section with nothing to draw keeps its heading and says why.
"""

from __future__ import annotations

import numpy as np

from fedsim.reporting import figures, metrics
from fedsim.reporting import page as pg
from fedsim.reporting.compare.groups import Group


def accuracy_section(groups: list[Group], series: list[figures.Series]) -> list[pg.Block]:
    blocks: list[pg.Block] = [pg.Heading("Accuracy against time and energy", "accuracy")]
    any_acc = any(np.isfinite(r.rounds["accuracy"]).any() for g in groups for r in g.runs
                  if r.n_rounds)
    if not any_acc:
        blocks.append(pg.Note("No run recorded a test accuracy: no accuracy curves."))
        return blocks
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
    return blocks


def energy_and_fairness_sections(groups: list[Group], series: list[figures.Series]
                                 ) -> list[pg.Block]:
    """Energy, then fairness; with no client-rounds at all one note stands for both (the
    fairness heading is left out: there is nothing to be fair about)."""
    blocks: list[pg.Block] = [pg.Heading("Energy by phase and device class", "energy")]
    if not any(len(r.clients) for g in groups for r in g.runs):
        blocks.append(pg.Note("No client-rounds recorded: no energy to split."))
        return blocks
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
    return blocks


def bits_section(groups: list[Group]) -> list[pg.Block]:
    """Bit-widths of the quantized entries only: a float run's flat 32 would squash the
    axis of the others."""
    blocks: list[pg.Block] = [pg.Heading("Bit-widths", "bits")]
    quantized = [g for g in groups if any(metrics.has_quantized_bits(r) for r in g.runs)]
    any_rounds = any(r.n_rounds for g in groups for r in g.runs)
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
    return blocks
