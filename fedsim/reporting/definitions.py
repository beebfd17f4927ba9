"""The definitions shown at the end of every page (single-run report and comparison)."""

from __future__ import annotations

DEFINITIONS: list[tuple[str, str]] = [
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
