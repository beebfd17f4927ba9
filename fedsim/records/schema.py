"""The run folder's format, declared once: files, columns, types, units and client statuses.

Everything that writes or reads a run folder -- the writer (:mod:`fedsim.records.writer`),
the typed reader (:mod:`fedsim.records.reader`), ``fedsim verify``, the reports, the
multi-seed summary and the test fixtures -- takes its column names and types from here, so
a column added or renamed in one place cannot silently drift from the others.

Pure standard library on purpose: the engine imports the status names and a report can be
made on a machine without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# -- client statuses (what happened to one selected client in one round) --------------------
OK = "ok"  # reported in time and was aggregated
STRAGGLER = "straggler"  # missed the deadline, or over-committed and not among the first
INFEASIBLE = "infeasible"  # its training configuration does not fit its usable memory
DROPOUT = "dropout"  # failed at a random point of its work
OFFLINE = "offline"  # went offline (availability) while working
BATTERY = "battery"  # battery could not pay the round (not scheduled) or emptied mid-work
STALE = "stale"  # async: finished after the run's last aggregation
STATUSES = (OK, STRAGGLER, INFEASIBLE, DROPOUT, OFFLINE, BATTERY, STALE)
LOST_STATUSES = STATUSES[1:]
#: rounds.csv column -> the client status it counts
STATUS_COLUMNS = {"stragglers": STRAGGLER, "infeasible": INFEASIBLE, "dropouts": DROPOUT,
                  "offline": OFFLINE, "battery": BATTERY}


@dataclass(frozen=True)
class Column:
    """One CSV column: its type (``int``, ``float`` or ``str``), unit and meaning.

    ``nullable`` columns may hold an empty cell (a mains-powered client has no battery
    level). ``required`` is False for columns that older fedsim versions did not write, so
    a reader still accepts their run folders.
    """

    name: str
    type: type
    unit: str
    doc: str
    nullable: bool = False
    required: bool = True


@dataclass(frozen=True)
class CsvSchema:
    """The columns of one CSV file of a run folder, in file order."""

    file: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.file} has no column {name!r}")

    def select(self, *types: type) -> tuple[str, ...]:
        """Names of the columns of the given types (e.g. ``select(int, float)``)."""
        return tuple(c.name for c in self.columns if c.type in types)


def _cols(*specs: tuple[Any, ...]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


ROUNDS = CsvSchema("rounds.csv", _cols(
    ("round", int, "", "round index, from 0"),
    ("sim_time_s", float, "s", "simulated time at the end of the round"),
    ("energy_j", float, "J", "cumulative fleet energy at the end of the round"),
    ("accuracy", float, "", "test accuracy of the global model (NaN when not evaluated)"),
    ("loss", float, "", "test loss of the global model (NaN when not evaluated)"),
    ("participants", int, "", "clients whose update was aggregated"),
    ("stragglers", int, "", "clients that missed the deadline or the over-commit cut"),
    ("selected", int, "", "clients selected this round"),
    ("infeasible", int, "", "selected clients whose configuration does not fit in memory"),
    ("round_s", float, "s", "duration of this round"),
    ("round_energy_j", float, "J", "fleet energy spent in this round"),
    ("dropouts", int, "", "clients that failed mid-work", False, False),
    ("offline", int, "", "clients that went offline mid-work", False, False),
    ("battery", int, "", "clients stopped by their battery", False, False),
))

CLIENTS = CsvSchema("clients.csv", _cols(
    ("round", int, "", "round index"),
    ("client_id", int, "", "client index, from 0 in fleet order"),
    ("device", str, "", "hardware profile name"),
    ("budget_bits", float, "bits", "the client's average bit budget"),
    ("avg_bits", float, "bits", "parameter-weighted average downlink bit-width"),
    ("samples", int, "", "training samples of the client"),
    ("compute_s", float, "s", "local training time"),
    ("comm_s", float, "s", "downlink + uplink time"),
    ("energy_j", float, "J", "downlink + compute + uplink + idle energy"),
    ("status", str, "", f"one of {', '.join(STATUSES)}"),
    ("device_class", str, "", "the profile's device class"),
    ("group", str, "", "the fleet group's label"),
    ("avg_bits_up", float, "bits", "parameter-weighted average uplink bit-width"),
    ("downlink_j", float, "J", "energy of the downlink phase"),
    ("compute_j", float, "J", "energy of local training"),
    ("uplink_j", float, "J", "energy of the uplink phase"),
    ("idle_j", float, "J", "energy idling until the round closed"),
    ("idle_s", float, "s", "time idling until the round closed", False, False),
    ("bits_down_payload", int, "bits", "downlink payload on the wire"),
    ("bits_up_payload", int, "bits", "uplink payload on the wire"),
    ("reason", str, "", "why a lost client was lost (empty when ok)", False, False),
    ("battery_j", float, "J", "battery level after the round (empty: mains power)", True,
     False),
    ("staleness", int, "", "async: model versions between download and aggregation", False,
     False),
))

BITS = CsvSchema("bits.csv", _cols(
    ("round", int, "", "round index"),
    ("client_id", int, "", "client index"),
    ("layer", str, "", "quantized layer name"),
    ("params", int, "", "weights of the layer"),
    ("bits_down", int, "bits", "downlink bit-width of the layer (empty: not sent)", True),
    ("bits_up", int, "bits", "uplink bit-width of the layer (empty: not received)", True),
))

PLAN = CsvSchema("plan.csv", _cols(
    ("group", str, "", "fleet group label"),
    ("device", str, "", "hardware profile name"),
    ("device_class", str, "", "the profile's device class"),
    ("client_id", int, "", "the client priced (a group row: its first client)"),
    ("budget", float, "bits", "the budget priced (32: float)"),
    ("avg_bits", float, "bits", "parameter-weighted average bits trained at that budget"),
    ("memory_bytes", int, "B", "training footprint at that budget"),
    ("usable_bytes", int, "B", "the device's usable memory"),
    ("compute_s", float, "s", "local training time of one round"),
    ("comm_s", float, "s", "downlink + uplink time of one round"),
    ("time_s", float, "s", "compute_s + comm_s"),
    ("energy_j", float, "J", "downlink + compute + uplink energy of one round"),
    ("binding", str, "", "the first constraint broken (memory, deadline, energy, battery)"),
    ("chosen", int, "", "1 on the budget the client (or group's first client) got"),
    ("clients", int, "", "group row: clients of the group given this budget"),
    ("excluded", int, "", "group row: clients of the group that fit no budget"),
))

CSV_SCHEMAS = {s.file: s for s in (ROUNDS, CLIENTS, BITS, PLAN)}

#: The record files, in the order the writer syncs them (checkpoint offsets follow it).
RECORD_FILES = ("events.jsonl", "rounds.csv", "clients.csv", "bits.csv")
#: Every file a finished run folder holds.
RUN_FILES = ("scenario.yaml", "summary.json", "rounds.csv", "clients.csv", "bits.csv",
             "events.jsonl")
#: Files a run folder may also hold: its split, its provenance and its budget plan.
OPTIONAL_FILES = ("partition.json", "run.json", "plan.csv")

#: Event fields every line of events.jsonl carries (name -> allowed JSON types).
EVENT_REQUIRED = {"t": (int, float), "round": (int,), "kind": (str,)}
#: Phases a client goes through in a round, in order; each has ``<phase>_start/_end`` events.
PHASES = ("downlink", "compute", "uplink")


def fmt(value: Any) -> str:
    """Stable text of one cell: floats rounded to 1e-10 in shortest round-trip form, so the
    same run gives the same bytes; None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)
