"""Records as columns: many clients' events and round records in one batch of arrays.

Why: a population-scale round has 10^6 client records and 3 x 10^6 events; building a
dict and a dataclass for each costs more than the simulation itself. The vectorised server
(:mod:`fedsim.engine.batchsync`) hands whole rounds to the observer as these batches. An
observer that only knows single records (``on_event`` / ``on_client``) still gets exactly
the dicts and :class:`ClientRoundRecord` objects the per-client engine would have given it
(:meth:`EventBatch.dicts`, :meth:`ClientBatch.records`), so every observer works with both
engines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedsim.engine.records import ClientRoundRecord

#: Fields of each client event kind, in the order the per-client engine emits them.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "downlink_end": ("duration_s", "payload_bits", "energy_j"),
    "uplink_end": ("duration_s", "payload_bits", "energy_j"),
    "compute_end": ("duration_s", "energy_j", "steps"),
    "infeasible": ("reason",),
    "battery_low": ("reason",),
    "straggler": ("phase", "cause", "energy_j"),
    "dropout": ("phase", "cause", "energy_j"),
    "offline": ("phase", "cause", "energy_j"),
    "battery": ("phase", "cause", "energy_j"),
}


@dataclass
class EventBatch:
    """Client events of one round, in emission order: ``kind`` indexes ``kinds``; a field
    column holds a value on the rows whose kind has that field (``KIND_FIELDS``)."""

    round: int
    t: np.ndarray  # full precision: text writers round it (engine.core.round_time)
    kind: np.ndarray  # int codes into ``kinds``
    kinds: tuple[str, ...]
    client: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    #: text fields stored as int codes into these values (-1: none)
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def decoded(self, name: str) -> list[Any]:
        """A field's values (text fields decoded)."""
        col = self.fields[name]
        if name not in self.codes:
            return col.tolist()
        values = self.codes[name]
        return [values[c] if c >= 0 else None for c in col.tolist()]

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def dicts(self) -> Iterator[dict[str, Any]]:
        """The events as the per-client engine's dicts (same keys, same order, same types)."""
        cols = {name: self.decoded(name) for name in self.fields}
        t = [round(x, 9) for x in self.t.tolist()]  # as engine.core.round_time
        kind, client = self.kind.tolist(), self.client.tolist()
        for i in range(len(t)):
            name = self.kinds[kind[i]]
            event: dict[str, Any] = {"t": t[i], "round": self.round, "kind": name,
                                     "client": client[i]}
            for f in KIND_FIELDS[name]:
                event[f] = cols[f][i]
            yield event


@dataclass
class ClientBatch:
    """One round's client records as columns (the names of ``ClientRoundRecord``).

    ``bits_down`` / ``bits_up`` hold, per row, an index into ``bit_vectors`` (-1: none);
    ``battery_j`` is NaN for a client on mains power (None in a record).
    """

    columns: dict[str, np.ndarray]
    bit_vectors: Sequence[tuple[int, ...]]
    bits_down: np.ndarray
    bits_up: np.ndarray
    status_codes: np.ndarray  # index into ``fedsim.records.schema.STATUSES``

    def __len__(self) -> int:
        return int(self.bits_down.shape[0])

    #: text columns stored as int codes into these values
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def status_counts(self) -> dict[str, int]:
        """Clients per status (only the statuses that occur)."""
        from fedsim.records.schema import STATUSES

        n = np.bincount(self.status_codes, minlength=len(STATUSES)).tolist()
        return {name: c for name, c in zip(STATUSES, n, strict=True) if c}

    def column(self, name: str) -> list[Any]:
        col = self.columns[name]
        if name in self.codes:
            values = self.codes[name]
            return [values[c] for c in col.tolist()]
        return col.tolist()

    def records(self) -> Iterator[ClientRoundRecord]:
        cols = {k: self.column(k) for k in self.columns}
        down, up = self.bits_down.tolist(), self.bits_up.tolist()
        battery = cols.pop("battery_j", None)
        finished = cols.pop("finished_s", None)
        for i in range(len(down)):
            rec = ClientRoundRecord(**{k: v[i] for k, v in cols.items()})
            if battery is not None and battery[i] == battery[i]:  # NaN: mains power
                rec.battery_j = battery[i]
            if finished is not None and finished[i] == finished[i]:  # NaN: never started
                rec.finished_s = finished[i]
            rec.bits_down = tuple(self.bit_vectors[down[i]]) if down[i] >= 0 else ()
            rec.bits_up = tuple(self.bit_vectors[up[i]]) if up[i] >= 0 else ()
            yield rec
