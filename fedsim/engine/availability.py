"""When is a client online? Built-in models and user traces, as on/off windows.

Every model yields a client's *online windows* ``(start_s, end_s)`` in increasing order (the
last may end at ``inf``). The engine runs one small SimPy process per client that walks
these windows, flips the client online/offline and interrupts its work when it goes away.
Randomness comes from a stream per (run seed, "availability", client), so adding a client
never changes another's windows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fedsim.errors import InputError
from fedsim.seeding import keyed_uniforms, rng
from fedsim.yamlio import read_text

INF = math.inf


class AvailabilityModel(Protocol):
    def windows(self, client_id: int) -> Iterator[tuple[float, float]]: ...


class AlwaysOn:
    """Every client online for the whole run (the default)."""

    def windows(self, client_id: int) -> Iterator[tuple[float, float]]:
        yield (0.0, INF)


@dataclass(frozen=True)
class Diurnal:
    """Online for ``online_fraction`` of every ``period_s``, at a per-client random phase
    (devices charge and sit on WiFi at night, at different local times)."""

    seed: int
    period_s: float = 86_400.0
    online_fraction: float = 0.5

    def phases(self, client_ids: np.ndarray | list[int]) -> np.ndarray:
        """Each client's phase in [0, 1) (a keyed draw: the same alone or in a batch)."""
        return keyed_uniforms(self.seed, ("availability", "diurnal"), client_ids)

    def windows(self, client_id: int) -> Iterator[tuple[float, float]]:
        if self.online_fraction >= 1.0:
            yield (0.0, INF)
            return
        phase = float(self.phases([client_id])[0])
        k = 0
        while True:
            s, e = self.window(phase, k)
            if e > 0:
                yield (max(0.0, s), e)
            k += 1

    def window(self, phase: float | np.ndarray, k: int | np.ndarray) -> tuple:
        """The k-th window ``(start, end)`` of a client with this phase, in closed form (the
        vectorised engine evaluates the same expression for many clients at once)."""
        start = (k - phase) * self.period_s
        return start, start + self.online_fraction * self.period_s


@dataclass(frozen=True)
class Markov:
    """Two-state Markov chain with exponential on/off durations; starts in its stationary
    distribution."""

    seed: int
    mean_on_s: float
    mean_off_s: float

    def windows(self, client_id: int) -> Iterator[tuple[float, float]]:
        g = rng(self.seed, "availability", "markov", client_id)
        p_on = self.mean_on_s / (self.mean_on_s + self.mean_off_s)
        t = 0.0
        if g.uniform() >= p_on:
            t += float(g.exponential(self.mean_off_s))
        while True:
            end = t + float(g.exponential(self.mean_on_s))
            yield (t, end)
            t = end + float(g.exponential(self.mean_off_s))


@dataclass(frozen=True)
class Trace:
    """Online windows read from a user's trace file, per client (FedScale/FLASH style)."""

    by_client: Mapping[int, tuple[tuple[float, float], ...]]
    default_on: bool = False

    def windows(self, client_id: int) -> Iterator[tuple[float, float]]:
        if client_id not in self.by_client:
            if self.default_on:
                yield (0.0, INF)
            return
        yield from self.by_client[client_id]


def load_trace(
    path: Path, client_labels: Sequence[set[str]], *, file: str, key: str
) -> dict[int, tuple[tuple[float, float], ...]]:
    """Read ``client,start_s,end_s`` rows. ``client`` is a client id, or a group name or
    device class that names several clients (``client_labels[i]`` lists client i's names).
    Overlapping windows of one client are merged. The file is read by the same reader as
    every input file (:func:`fedsim.yamlio.read_text`: not UTF-8, unreadable), and a bad
    row is reported with the trace file and its line."""
    try:
        missing = not path.is_file()
    except OSError:  # e.g. a name too long: read_text below says so, naming the file
        missing = False
    if missing:
        raise InputError(f"availability trace not found: {path}", file=file, key=key)
    raw: dict[int, list[tuple[float, float]]] = {}
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.DictReader(f)
        need = {"client", "start_s", "end_s"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise InputError(
                f"trace needs a header with columns client,start_s,end_s; got "
                f"{reader.fieldnames}", file=str(path),
            )
        for line, row in enumerate(reader, start=2):
            try:
                start, end = float(row["start_s"]), float(row["end_s"])
            except (TypeError, ValueError):
                raise InputError(f"line {line}: start_s and end_s must be numbers",
                                 file=str(path)) from None
            if not (0 <= start < end):
                raise InputError(f"line {line}: expected 0 <= start_s < end_s, got "
                                 f"{start}, {end}", file=str(path))
            who = (row["client"] or "").strip()
            if who.isdigit():
                targets = [int(who)] if int(who) < len(client_labels) else []
            else:
                targets = [i for i, labels in enumerate(client_labels) if who in labels]
            if not targets:
                raise InputError(f"line {line}: '{who}' is neither a client id below "
                                 f"{len(client_labels)} nor a group or device class",
                                 file=str(path))
            for cid in targets:
                raw.setdefault(cid, []).append((start, end))
    out: dict[int, tuple[tuple[float, float], ...]] = {}
    for cid, wins in raw.items():
        wins.sort()
        merged: list[tuple[float, float]] = []
        for s, e in wins:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        out[cid] = tuple(merged)
    return out
