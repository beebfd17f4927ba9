"""The table of published on-device training measurements, read and checked at the door.

Why a table shipped with the package: every simulated second comes from the cost model, and
the only honest test of it is a measurement somebody else made on a real device. Each row
is one published training time (device, model, input, batch, precision, seconds per batch,
power or energy where published) with the source it came from; ``fedsim profiles check``
predicts every row and reports the error, and ``--fit`` calibrates a profile on the rows
marked ``fit`` so the rows marked ``holdout`` stay an honest test.

Columns (CSV with a header; ``#`` lines are comments):

========================  =========================================================
``id``                    unique row name
``device``                a profile name (``raspberry_pi_4``)
``model``                 a fedsim model (``torchvision.mobilenet_v2``, ``cnn``)
``options``               model options, ``key=value;key=value`` (YAML values), may be empty
``input``                 ``CxHxW`` of one sample (``3x224x224``)
``batch``                 samples per step (>= 1)
``precision``             ``fp32``, ``fp16`` or ``int8`` (weights and activations)
``seconds_per_batch``     measured time of one training step (> 0)
``power_w``               average power while training, W (> 0), may be empty
``use``                   ``fit`` (calibrates the profile) or ``holdout`` (tests it)
``source``                citation: authors, title, venue or repository, table
``url``                   where to read it, may be empty
``note``                  what the number includes (data loading, warm-up), may be empty
========================  =========================================================

A bad table exits 2 naming the file, the row (its line number) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedsim.errors import InputError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "id", "device", "model", "input", "batch", "precision", "seconds_per_batch", "use", "source",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("options", "power_w", "url", "note")
PRECISION_BITS: dict[str, int] = {"fp32": 32, "fp16": 16, "int8": 8}
USES: tuple[str, ...] = ("fit", "holdout")
TABLE_NAME = "training_times.csv"


@dataclass(frozen=True)
class Measurement:
    """One published training time."""

    line: int
    id: str
    device: str
    model: str
    input_shape: tuple[int, int, int]
    batch: int
    precision: str
    seconds: float
    use: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)
    power_w: float | None = None
    url: str = ""
    note: str = ""

    @property
    def bits(self) -> int:
        return PRECISION_BITS[self.precision]

    @property
    def workload(self) -> str:
        """Model, options and input: rows with equal workloads share one layer table."""
        opts = ";".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        shape = "x".join(str(d) for d in self.input_shape)
        return f"{self.model}[{opts}] {shape}" if opts else f"{self.model} {shape}"


def default_table() -> Path | None:
    """The shipped table (``hardware_profiles/measurements/training_times.csv``), or None."""
    from fedsim.hardware.loader import builtin_profiles_dir

    root = builtin_profiles_dir()
    if root is None:
        return None
    path = root / "measurements" / TABLE_NAME
    return path if path.is_file() else None


def load_measurements(
    path: str | Path,
    *,
    devices: Iterable[str] | None = None,
    check_model: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[Measurement]:
    """Read and validate a measurement table.

    Args:
        path: the CSV file.
        devices: known profile names; a row naming another device is an error.
        check_model: raises :class:`InputError` for an unknown model or bad options (the
            model zoo's validator); None skips that check.

    Raises:
        InputError: unreadable file, missing column, or a bad value (file, row and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the measurement table: {exc.strerror}", file=path) from None
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError("the measurement table is empty (expected a header and rows)", file=path)
    reader = csv.reader(io.StringIO("\n".join(ln for _, ln in lines)))
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; the header must name "
                         f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})",
                         file=path, key=f"line {lines[0][0]}")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(unknown)}", file=path,
                         key=f"line {lines[0][0]}")
    known_devices = set(devices) if devices is not None else None
    out: list[Measurement] = []
    seen: set[str] = set()
    for (line, _), values in zip(lines[1:], rows[1:], strict=True):
        if len(values) != len(header):
            raise InputError(f"has {len(values)} fields, the header has {len(header)}",
                             file=path, key=f"line {line}")
        rec = dict(zip(header, (v.strip() for v in values), strict=True))
        m = _row(rec, line, path, known_devices, check_model)
        if m.id in seen:
            raise InputError(f"duplicate id {m.id!r}", file=path, key=f"line {line}, column id")
        seen.add(m.id)
        out.append(m)
    if not out:
        raise InputError("the measurement table has a header but no rows", file=path)
    return out


def _row(
    rec: dict[str, str],
    line: int,
    path: Path,
    devices: set[str] | None,
    check_model: Callable[[str, dict[str, Any]], None] | None,
) -> Measurement:
    def bad(column: str, why: str) -> InputError:
        return InputError(why, file=path, key=f"line {line}, column {column}")

    for col in REQUIRED_COLUMNS:
        if not rec.get(col):
            raise bad(col, "is empty")
    if devices is not None and rec["device"] not in devices:
        import difflib

        near = difflib.get_close_matches(rec["device"], sorted(devices), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise bad("device", f"unknown device {rec['device']!r}{hint}; known profiles: "
                            f"{', '.join(sorted(devices))}")
    options = _options(rec.get("options", ""), bad)
    if check_model is not None:
        try:
            check_model(rec["model"], options)
        except InputError as exc:
            raise bad("model" if exc.key in (None, "model.name") else "options",
                      f"{rec['model']}: {exc.detail}") from None
    shape = _shape(rec["input"], bad)
    batch = _positive_int(rec["batch"], "batch", bad)
    if rec["precision"] not in PRECISION_BITS:
        raise bad("precision", f"expected one of {', '.join(PRECISION_BITS)}, "
                               f"got {rec['precision']!r}")
    seconds = _positive_float(rec["seconds_per_batch"], "seconds_per_batch", bad)
    power = rec.get("power_w") or None
    if rec["use"] not in USES:
        raise bad("use", f"expected fit or holdout, got {rec['use']!r}")
    return Measurement(
        line=line, id=rec["id"], device=rec["device"], model=rec["model"], input_shape=shape,
        batch=batch, precision=rec["precision"], seconds=seconds, use=rec["use"],
        source=rec["source"], options=options,
        power_w=_positive_float(power, "power_w", bad) if power else None,
        url=rec.get("url", ""), note=rec.get("note", ""),
    )


def _options(text: str, bad: Callable[[str, str], InputError]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise bad("options", f"expected key=value pairs separated by ';', got {part!r}")
        try:
            out[key.strip()] = yaml.safe_load(value.strip())
        except yaml.YAMLError:
            raise bad("options", f"cannot read the value of {key.strip()!r}: {value!r}") from None
    return out


def _shape(text: str, bad: Callable[[str, str], InputError]) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise bad("input", f"expected CxHxW with positive integers (3x224x224), got {text!r}")
    if dims[1] != dims[2]:
        raise bad("input", f"only square inputs are supported (H = W), got {text!r}")
    return dims[0], dims[1], dims[2]


def _positive_int(text: str, column: str, bad: Callable[[str, str], InputError]) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad(column, f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise bad(column, f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str, column: str, bad: Callable[[str, str], InputError]) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad(column, f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise bad(column, f"expected a positive number, got {text}")
    return value
