"""One look for every figure and table: colours, names, units and number formats.

Colours are fixed per method and per device class (not per plot), so FedMPQ is the same
vermillion and a phone the same blue in every report and every comparison. The palettes are
Okabe-Ito (methods) and Paul Tol's bright/muted sets (device classes, phases): both stay
distinguishable for the common colour-vision deficiencies and in greyscale print.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from fedsim.records.schema import BATTERY, DROPOUT, INFEASIBLE, OFFLINE, OK, STRAGGLER

# -- methods ------------------------------------------------------------------------------
METHOD_NAMES: dict[str, str] = {
    "fedmpq": "FedMPQ",
    "aqfl": "AQFL",
    "fpq8": "FPQ8",
    "fedavg": "FedAvg (FP32)",
    "fp32": "FP32",
    "fedpaq": "FedPAQ",
    "uveqfed": "UVeQFed",
    "fedprox": "FedProx",
}
METHOD_COLORS: dict[str, str] = {
    "fedmpq": "#D55E00",   # vermillion: the method under study stands out
    "aqfl": "#0072B2",     # blue
    "fpq8": "#009E73",     # bluish green
    "fedavg": "#000000",   # black: the float reference
    "fp32": "#000000",
    "fedpaq": "#E69F00",   # orange
    "uveqfed": "#CC79A7",  # reddish purple
    "fedprox": "#56B4E9",  # sky blue
}
METHOD_MARKERS: dict[str, str] = {
    "fedmpq": "o", "aqfl": "s", "fpq8": "^", "fedavg": "D", "fp32": "D", "fedpaq": "v",
    "uveqfed": "P", "fedprox": "X",
}
_EXTRA_COLORS = ("#332288", "#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#6699CC")
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _stable_index(name: str, n: int) -> int:
    return zlib.crc32(name.encode("utf-8")) % n


def method_name(alg: str) -> str:
    return METHOD_NAMES.get(alg.lower(), alg)


def method_marker(alg: str) -> str:
    key = alg.lower()
    return METHOD_MARKERS.get(key) or MARKERS[_stable_index(key, len(MARKERS))]


def method_color(alg: str) -> str:
    key = alg.lower()
    return METHOD_COLORS.get(key) or _EXTRA_COLORS[_stable_index(key, len(_EXTRA_COLORS))]


# -- device classes -------------------------------------------------------------------------
CLASS_NAMES: dict[str, str] = {
    "sbc": "SBC", "mcu": "MCU", "mini_pc": "mini PC", "iot": "IoT", "fpga": "FPGA",
    "jetson": "Jetson",
}
CLASS_COLORS: dict[str, str] = {
    "phone": "#4477AA",
    "tablet": "#66CCEE",
    "sbc": "#228833",
    "jetson": "#CCBB44",
    "mcu": "#EE6677",
    "laptop": "#AA3377",
    "desktop": "#332288",
    "mini_pc": "#44AA99",
    "server": "#882255",
    "accelerator": "#999933",
    "fpga": "#DDCC77",
    "iot": "#CC6677",
    "other": "#BBBBBB",
}
_EXTRA_CLASS_COLORS = ("#117733", "#88CCEE", "#AA4499", "#661100", "#6699CC", "#888888")


def class_name(cls: str) -> str:
    return CLASS_NAMES.get(cls, cls)


def class_color(cls: str) -> str:
    return CLASS_COLORS.get(cls) or _EXTRA_CLASS_COLORS[
        _stable_index(cls, len(_EXTRA_CLASS_COLORS))
    ]


# -- phases and statuses ----------------------------------------------------------------------
PHASES: tuple[str, ...] = ("compute", "downlink", "uplink", "idle")
PHASE_COLORS: dict[str, str] = {  # outside the class palette: no phase looks like a class
    "compute": "#1D3557",   # navy: the device is busy training
    "downlink": "#8ECAE6",  # light sky: receiving
    "uplink": "#F4A261",    # sand orange: sending
    "idle": "#D9D9D9",      # light grey: waiting
}
PHASE_LABELS: dict[str, str] = {
    "compute": "compute (local training)",
    "downlink": "downlink (receive model)",
    "uplink": "uplink (send update)",
    "idle": "idle (wait for round end)",
}
STATUS_COLORS: dict[str, str] = {
    OK: "#4D4D4D",          # dark grey: the normal case, recedes
    STRAGGLER: "#E69F00",   # amber
    INFEASIBLE: "#BBBBBB",  # light grey
    DROPOUT: "#CC3311",     # red
    OFFLINE: "#9970AB",     # purple
    BATTERY: "#B2182B",     # dark red
}
STATUS_LABELS: dict[str, str] = {
    OK: "aggregated",
    STRAGGLER: "straggler (missed deadline)",
    INFEASIBLE: "infeasible (did not fit memory)",
    DROPOUT: "dropped out",
    OFFLINE: "offline",
    BATTERY: "battery exhausted",
}
FAIL_COLOR = "#CC3311"


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, "#555555")


# -- matplotlib look ----------------------------------------------------------------------------
RC: dict[str, Any] = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
    "figure.dpi": 100,
    "savefig.dpi": 160,
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}

# Figure widths in inches (the HTML page shows them at 100 %, ~ 800 px wide).
WIDE = 8.0
HALF = 5.2


# -- units ------------------------------------------------------------------------------------
def energy_unit(max_j: float) -> tuple[float, str]:
    """Scale factor and unit name for an axis whose largest value is ``max_j`` joules."""
    m = abs(max_j) if math.isfinite(max_j) else 0.0
    if m >= 1e6:
        return 1e-6, "MJ"
    if m >= 1e3:
        return 1e-3, "kJ"
    if m >= 1 or m == 0:
        return 1.0, "J"
    return 1e3, "mJ"


def time_unit(max_s: float) -> tuple[float, str]:
    m = abs(max_s) if math.isfinite(max_s) else 0.0
    if m >= 2 * 3600:
        return 1 / 3600, "h"
    if m >= 120:
        return 1 / 60, "min"
    return 1.0, "s"


def _sig(x: float, digits: int = 3, like: float | None = None) -> str:
    """``digits`` significant digits (of ``like`` when given: a ± sd gets its mean's)."""
    ref = x if like is None else like
    if ref == 0 or not math.isfinite(ref) or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(ref))))
    return f"{x:,.{decimals}f}"


def fmt_energy(j: float | None, unit_of: float | None = None) -> str:
    """Joules with a readable unit (that of ``unit_of`` when given, e.g. for a ± sd)."""
    if j is None or not math.isfinite(j):
        return "—"
    f, u = energy_unit(j if unit_of is None else unit_of)
    return f"{_sig(j * f, like=None if unit_of is None else unit_of * f)} {u}"


def fmt_time(s: float | None, unit_of: float | None = None) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    f, u = time_unit(s if unit_of is None else unit_of)
    return f"{_sig(s * f, like=None if unit_of is None else unit_of * f)} {u}"


def fmt_bytes(b: float | None, unit_of: float | None = None) -> str:
    if b is None or not math.isfinite(b):
        return "—"
    ref = abs(b if unit_of is None else unit_of)
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if ref >= f:
            return f"{_sig(b / f, like=None if unit_of is None else unit_of / f)} {unit}"
    return f"{b:.0f} B"


def fmt_j_per_point(j: float | None, unit_of: float | None = None) -> str:
    text = fmt_energy(j, unit_of)
    return text if text == "—" else f"{text}/pp"


def fmt_pct(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    smallest = 10.0 ** -digits
    if 0 < abs(100 * x) < smallest / 2:  # never round a real share down to "0.0 %"
        return f"< {smallest:.{digits}f} %"
    return f"{100 * x:.{digits}f} %"


def fmt_num(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return _sig(x, digits)
