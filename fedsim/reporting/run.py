"""Reading run folders: validate at the door, then hand out typed columns.

A run folder is what ``fedsim run`` publishes (see ``fedsim/rundir.py``). This module never
imports the simulator: it reads the files only, so a report can be made on any machine from
a copied results folder. Every problem becomes an :class:`~fedsim.errors.InputError` that
names the file (and the column or line) so the CLI can print one message and exit 2.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import InputError

# The files every finished run folder holds, in the order a reader would look for them.
RUN_FILES: tuple[str, ...] = (
    "scenario.yaml",
    "summary.json",
    "rounds.csv",
    "clients.csv",
    "bits.csv",
    "events.jsonl",
)

ROUND_NUMERIC = (
    "round", "sim_time_s", "energy_j", "accuracy", "loss", "participants", "stragglers",
    "selected", "infeasible", "round_s", "round_energy_j",
)
CLIENT_NUMERIC = (
    "round", "client_id", "budget_bits", "avg_bits", "samples", "compute_s", "comm_s",
    "energy_j", "avg_bits_up", "downlink_j", "compute_j", "uplink_j", "idle_j", "idle_s",
    "bits_down_payload", "bits_up_payload",
)
CLIENT_TEXT = ("device", "status", "device_class", "group", "reason")
BITS_NUMERIC = ("round", "client_id", "params", "bits_down", "bits_up")
BITS_TEXT = ("layer",)

# Optional columns read when present (a later simulator may write them).
#   clients.csv ``accuracy``: test accuracy of the model this client received (per-tier
#   fairness of mixed-precision methods); drawn per device class when present.
CLIENT_OPTIONAL_NUMERIC = ("accuracy",)

_ROUND_RE = re.compile(r'"round"\s*:\s*(-?\d+)\s*[,}]')

# Client statuses. Anything not "ok" is a client-round whose update was not aggregated.
OK = "ok"
STRAGGLER = "straggler"
INFEASIBLE = "infeasible"
DROPOUT_STATUSES = ("dropout", "offline", "battery")


class Table:
    """Columns of one CSV file: numeric ones as float arrays (empty cell = NaN), text as str."""

    def __init__(self, columns: dict[str, np.ndarray], n: int) -> None:
        self.columns = columns
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def where(self, mask: np.ndarray) -> Table:
        return Table({k: v[mask] for k, v in self.columns.items()}, int(np.count_nonzero(mask)))


def read_csv(path: Path, numeric: Sequence[str], text: Sequence[str] = (),
             optional_numeric: Sequence[str] = (), keep_rounds: set[int] | None = None,
             header_only: bool = False) -> Table:
    """Read a header-first CSV, checking that every required column is there.

    ``keep_rounds`` reads only the rows of those rounds (bits.csv of a long run is big);
    ``header_only`` checks the columns and reads no row.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError("empty file: expected a header row", file=path)
            header = [h.strip() for h in header]
            missing = [c for c in (*numeric, *text) if c not in header]
            if missing:
                raise InputError(
                    f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                    f"(found: {', '.join(header)})",
                    file=path,
                )
            wanted_num = [c for c in (*numeric, *optional_numeric) if c in header]
            idx = {c: header.index(c) for c in (*wanted_num, *text)}
            raw: dict[str, list[Any]] = {c: [] for c in idx}
            round_idx = header.index("round") if "round" in header else None
            keep = {str(r) for r in keep_rounds} if keep_rounds is not None else None
            for lineno, row in enumerate([] if header_only else reader, start=2):
                if not row:
                    continue
                if keep is not None and round_idx is not None:
                    cell = row[round_idx].strip()
                    if cell not in keep and cell.split(".")[0] not in keep:
                        continue
                if len(row) < len(header):
                    row = row + [""] * (len(header) - len(row))
                for c in wanted_num:
                    cell = row[idx[c]].strip()
                    if cell == "" or cell.lower() in ("nan", "none", "null"):
                        raw[c].append(math.nan)
                        continue
                    try:
                        raw[c].append(float(cell))
                    except ValueError:
                        raise InputError(
                            f"line {lineno}: expected a number, got {cell!r}",
                            file=path, key=c,
                        ) from None
                for c in text:
                    raw[c].append(row[idx[c]].strip())
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV file: {exc}", file=path) from None
    n = len(next(iter(raw.values()))) if raw else 0
    cols: dict[str, np.ndarray] = {}
    for c, vals in raw.items():
        if c in text:
            cols[c] = np.array(vals, dtype=object)
        else:
            cols[c] = np.array(vals, dtype=float)
    return Table(cols, n)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=path) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", file=path)
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid YAML: {exc}", file=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("expected a mapping of scenario keys", file=path)
    return data


@dataclass
class Run:
    """One finished run folder, validated and parsed (events are read on demand)."""

    path: Path
    scenario: dict[str, Any]
    summary: dict[str, Any]
    rounds: Table
    clients: Table
    _class_order: list[str] = field(default_factory=list, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def bits(self, rounds: set[int] | None = None) -> Table:
        """Rows of bits.csv (only those of ``rounds`` when given: the file can be large)."""
        key = f"bits:{sorted(rounds) if rounds is not None else 'all'}"
        if key not in self._cache:
            self._cache[key] = read_csv(self.path / "bits.csv", BITS_NUMERIC, BITS_TEXT,
                                        keep_rounds=rounds)
        return self._cache[key]  # type: ignore[no-any-return]

    def cached(self, key: str, make: Any) -> Any:
        """Memoise a derived value (statistics are asked for by several figures)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # -- identity ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def algorithm(self) -> str:
        alg = self.summary.get("algorithm")
        if not alg:
            alg = (self.scenario.get("algorithm") or {}).get("name", "unknown")
        return str(alg)

    @property
    def scenario_name(self) -> str:
        return str(self.summary.get("scenario") or self.scenario.get("name") or "scenario")

    @property
    def seed(self) -> Any:
        return self.summary.get("seed", self.scenario.get("seed"))

    @property
    def n_rounds(self) -> int:
        """Completed (recorded) rounds."""
        return len(self.rounds)

    @property
    def planned_rounds(self) -> int | None:
        r = self.scenario.get("rounds")
        return int(r) if isinstance(r, int | float) else None

    # -- fleet ------------------------------------------------------------------------------
    @property
    def device_classes(self) -> list[str]:
        """Device classes in fleet order (order of their first client id)."""
        if not self._class_order:
            c = self.clients
            first: dict[str, float] = {}
            for cls, cid in zip(c["device_class"], c["client_id"], strict=True):
                first[cls] = min(first.get(cls, math.inf), cid)
            self._class_order = sorted(first, key=lambda k: (first[k], k))
        return self._class_order

    def client_classes(self) -> dict[int, str]:
        """client id -> device class (from clients.csv)."""
        return self.cached("client_classes", lambda: {
            int(i): str(k) for i, k in zip(self.clients["client_id"],
                                           self.clients["device_class"], strict=True)})

    # -- events -----------------------------------------------------------------------------
    def iter_events(self, rounds: set[int] | None = None) -> Iterator[dict[str, Any]]:
        """Events of events.jsonl (only those of ``rounds`` when given), in file order."""
        path = self.path / "events.jsonl"
        try:
            f = open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
        with f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                if rounds is not None:
                    m = _ROUND_RE.search(line)
                    if m and int(m.group(1)) not in rounds:
                        continue  # skip parsing events of other rounds (long runs)
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {lineno}: not valid JSON ({exc.msg})",
                                     file=path) from None
                if not isinstance(ev, dict) or "kind" not in ev or "t" not in ev:
                    raise InputError(f"line {lineno}: expected an object with 't' and 'kind'",
                                     file=path)
                if rounds is not None and ev.get("round") not in rounds:
                    continue
                yield ev


def run_files_present(path: Path) -> list[str]:
    return [name for name in RUN_FILES if (path / name).is_file()]


def child_runs(path: Path) -> list[Path]:
    """Run folders directly under ``path`` (a seeds parent holds one per seed)."""
    if not path.is_dir():
        return []
    out = []
    for p in sorted(path.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and len(run_files_present(p)) == len(
            RUN_FILES
        ):
            out.append(p)
    return out


def check_run_folder(path: Path) -> None:
    """Raise an InputError saying what is wrong if ``path`` is not a complete run folder."""
    if not path.exists():
        raise InputError("no such folder", file=path)
    if not path.is_dir():
        raise InputError("not a run folder (it is a file); expected the folder that "
                         f"holds {', '.join(RUN_FILES)}", file=path)
    present = run_files_present(path)
    missing = [name for name in RUN_FILES if name not in present]
    if not missing:
        return
    hint = ""
    if path.name.startswith(".") and path.name.endswith(".partial"):
        hint = " (an unfinished run: the simulator renames it into place only when it ends)"
    if not present:
        children = child_runs(path)
        if children:
            raise InputError(
                f"not a run folder but a parent of {len(children)} run folders "
                f"({', '.join(c.name for c in children[:4])}"
                f"{', ...' if len(children) > 4 else ''}); report one of them, or pass the "
                "parent to 'fedsim compare'",
                file=path,
            )
        raise InputError(
            f"not a fedsim run folder{hint}: none of {', '.join(RUN_FILES)} found", file=path
        )
    raise InputError(
        f"incomplete run folder{hint}: missing {', '.join(missing)}", file=path
    )


def load_run(path: str | Path) -> Run:
    """Validate and read the run folder at ``path``.

    Raises :class:`InputError` naming the missing file(s), a missing column or a bad value.
    """
    path = Path(path)
    check_run_folder(path)
    scenario = _read_yaml(path / "scenario.yaml")
    summary = _read_json(path / "summary.json")
    rounds = read_csv(path / "rounds.csv", ROUND_NUMERIC)
    clients = read_csv(path / "clients.csv", CLIENT_NUMERIC, CLIENT_TEXT,
                       optional_numeric=CLIENT_OPTIONAL_NUMERIC)
    read_csv(path / "bits.csv", BITS_NUMERIC, BITS_TEXT, header_only=True)
    if len(rounds):
        order = np.argsort(rounds["round"], kind="stable")
        rounds = Table({k: v[order] for k, v in rounds.columns.items()}, len(rounds))
    return Run(path=path, scenario=scenario, summary=summary, rounds=rounds, clients=clients)


def resolve_group(path: str | Path) -> list[Path]:
    """Run folders behind one ``compare`` argument: the run itself, or a seeds parent's runs."""
    path = Path(path)
    if path.is_dir() and not run_files_present(path):
        children = child_runs(path)
        if children:
            return children
    check_run_folder(path)
    return [path]
