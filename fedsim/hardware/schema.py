"""Typed schema of device and link profiles (the YAML files in ``hardware_profiles/``).

Every field carries its unit in its name (``peak_gflops``, ``active_w``, ``ram_mb``,
``up_mbps``, ``rtt_s``). Models are frozen and forbid unknown keys, numbers are strict (a
quoted ``"5"`` in YAML is a string, not a number), and sequences are tuples, so a profile is
immutable and hashable. Loading and error reporting live in :mod:`fedsim.hardware.loader`;
this module only says what a valid profile is.

Units used throughout:
  * compute rates in G ops/s (1e9), a multiply-accumulate counting as 2 ops (FLOPs on float
    hardware, integer ops on integer hardware: the convention of GFLOPS and TOPS datasheets);
  * memory bandwidth in GB/s (1e9 bytes/s); RAM in MiB (2**20 bytes, as RAM is sold);
  * link rates in Mbit/s (1e6 bits/s); power in W; energy per operation in pJ; time in s.
"""

from __future__ import annotations

import itertools
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from fedsim.validation import yaml_keys

PrecisionMode = Literal["float", "int8", "bit_flexible", "bit_serial", "table"]
DeviceClass = Literal[
    "phone",
    "tablet",
    "sbc",
    "jetson",
    "mcu",
    "laptop",
    "desktop",
    "mini_pc",
    "server",
    "accelerator",
    "fpga",
    "iot",
    "other",
]
LinkKind = Literal["wifi", "lte", "5g", "ble", "ethernet", "lora"]
PRECISION_MODES: tuple[str, ...] = typing.get_args(PrecisionMode)
DEVICE_CLASSES: tuple[str, ...] = typing.get_args(DeviceClass)
LINK_KINDS: tuple[str, ...] = typing.get_args(LinkKind)

PosFloat = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]
SpeedUp = Annotated[float, Field(strict=True, ge=1, le=1000, allow_inf_nan=False)]


def _within(lo: float, hi: float, *, above: bool = False) -> Any:
    """A strict, finite float in ``[lo, hi]`` (``(lo, hi]`` with ``above``)."""
    low = {"gt": lo} if above else {"ge": lo}
    return Annotated[float, Field(strict=True, le=hi, allow_inf_nan=False, **low)]


# Physical bounds (docs/hardware.md section 8): every figure a time or an energy divides by
# has a floor and every figure that multiplies one has a ceiling, wide enough for anything
# from a sensor node to a GPU cluster, so no accepted profile can give an infinite or NaN
# time or energy (a 5e-324 GFLOPS device would take "inf" seconds).
Gflops = _within(1e-6, 1e7)  # 1 kFLOP/s .. 10 PFLOP/s
GBps = _within(1e-6, 1e6)  # 1 kB/s .. 1 PB/s
Mbps = _within(1e-6, 1e6)  # 1 bit/s .. 1 Tbit/s
Watts = _within(0.0, 1e5)
PosWatts = _within(0.0, 1e5, above=True)
Picojoules = _within(0.0, 1e9)
PosPicojoules = _within(0.0, 1e9, above=True)
Seconds = _within(0.0, 86_400.0)
Microseconds = _within(0.0, 1e9)
Efficiency_ = _within(1e-6, 1.0)  # fraction of peak; below 1e-6 is a typo, not a device
DutyCycle = _within(1e-6, 1.0)
UsableFraction = _within(1e-6, 1.0)
Spread = _within(0.0, 3.0)  # log-normal sigma: 3 already spans e^±26 at the draw's extremes
Megabytes = _within(1e-3, 1e9)  # 1 kB .. 1 PB
WattHours = _within(1e-6, 1e7)
RelativeLatency = _within(1e-6, 1e6)
BitWidth = Annotated[int, Field(strict=True, ge=1, le=32)]
Name = Annotated[str, Field(strict=True, min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Source(_Frozen):
    """One citation: which figures it backs, where they come from, and whether they are estimates.

    ``fields`` are dotted key paths in the profile (``compute.peak_gflops``); a path to a
    section (``power``) covers every figure inside it.
    """

    fields: tuple[str, ...] = Field(min_length=1)
    cite: str = Field(min_length=1)
    url: str | None = None
    estimate: bool = False
    note: str | None = None


class LatencyTable(_Frozen):
    """Measured relative latency per (weight bits, activation bits), for the ``table`` mode.

    ``relative_latency[i][j]`` is the time of a MAC at ``w_bits[i]`` x ``a_bits[j]`` relative to
    the device's base rate (the entry equal to 1.0, usually W8A8). Both axes must be strictly
    increasing and end at 32 (float), so the table states what a float layer costs; values
    must be positive and non-decreasing along both axes (fewer bits never cost more). Between
    grid points the latency is interpolated bilinearly in bits; below the smallest entry it is
    clamped to that entry.

    ``monotone: false`` drops the non-decreasing rule (and only that rule). It exists for tables
    *measured* on a host that trains with fake quantization (``fedsim profiles calibrate``):
    there the bit planes and activation quantizers are extra float work on top of the float
    MACs, so W2A4 legitimately costs more than W32A32 (1.3-2x on a CPU), and the entries need
    not even grow with bits. Such a table is a measurement, not a law, so the "fewer bits never
    cost more" guarantee of docs/hardware.md section 3 does not hold for it; no shipped
    profile sets it (tests/hardware/test_calibrate.py), so the monotonicity tests of the
    shipped profiles stand.
    """

    w_bits: tuple[BitWidth, ...] = Field(min_length=1)
    a_bits: tuple[BitWidth, ...] = Field(min_length=1)
    relative_latency: tuple[tuple[RelativeLatency, ...], ...]
    monotone: Annotated[bool, Field(strict=True)] = True

    @model_validator(mode="after")
    def _check_grid(self) -> LatencyTable:
        for axis in ("w_bits", "a_bits"):
            vals = getattr(self, axis)
            if any(b >= c for b, c in itertools.pairwise(vals)):
                raise ValueError(f"{axis} must be strictly increasing, got {list(vals)}")
            if vals[-1] != 32:
                raise ValueError(
                    f"{axis} must end at 32 (the float entry), got {list(vals)}: the table has "
                    "to say what a float layer costs"
                )
        rows = self.relative_latency
        if len(rows) != len(self.w_bits) or any(len(r) != len(self.a_bits) for r in rows):
            raise ValueError(
                f"relative_latency must be {len(self.w_bits)} rows (one per w_bits) of "
                f"{len(self.a_bits)} values (one per a_bits)"
            )
        if not self.monotone:  # a measured fake-quant table (see the class docstring)
            return self
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if i and v < rows[i - 1][j]:
                    raise ValueError(
                        f"relative_latency must not decrease with more weight bits: "
                        f"[{i}][{j}]={v} < [{i - 1}][{j}]={rows[i - 1][j]} (a measured "
                        "fake-quant table may say monotone: false)"
                    )
                if j and v < row[j - 1]:
                    raise ValueError(
                        f"relative_latency must not decrease with more activation bits: "
                        f"[{i}][{j}]={v} < [{i}][{j - 1}]={row[j - 1]} (a measured "
                        "fake-quant table may say monotone: false)"
                    )
        return self


#: The cost model's operator classes, in the order of :class:`Efficiency`'s fields.
OP_CLASSES: tuple[str, ...] = ("dense_conv", "depthwise_conv", "linear", "elementwise")

#: Default efficiencies (fraction of ``peak_gflops`` a class reaches in training), used for
#: every class a profile does not state: the medians over the three CPU profiles calibrated on
#: published training times (raspberry_pi_4, raspberry_pi_5, snapdragon_855_phone;
#: docs/hardware.md, "Operator classes"), rounded. A profile should state its own.
DEFAULT_EFFICIENCY: dict[str, float] = {
    "dense_conv": 0.41,
    "depthwise_conv": 0.014,
    "linear": 0.15,
    "elementwise": 0.0021,
}


class Efficiency(_Frozen):
    """Fraction of the peak rate each operator class reaches in real training code.

    Why per class: on CPUs and GPUs a dense 3x3 convolution reaches a good share of peak,
    while a depthwise convolution (a few MACs per weight, little reuse), a small linear layer
    and element-wise work (BatchNorm, activations, adds, pooling: a few flops per element)
    run far below it. One utilisation for everything gets a depthwise-separable network's
    time, and its ranking against dense networks, wrong. ``elementwise`` is a fraction of
    the peak *flop* rate (a MAC counts as 2 flops, as in ``peak_gflops``).
    """

    dense_conv: Efficiency_ = DEFAULT_EFFICIENCY["dense_conv"]
    depthwise_conv: Efficiency_ = DEFAULT_EFFICIENCY["depthwise_conv"]
    linear: Efficiency_ = DEFAULT_EFFICIENCY["linear"]
    elementwise: Efficiency_ = DEFAULT_EFFICIENCY["elementwise"]

    def of(self, op_class: str) -> float:
        return float(getattr(self, op_class))


class ComputeProfile(_Frozen):
    """Compute side of the roofline.

    Attributes:
        mode: precision mode; selects the speed-up law ``s(b, a)`` (see docs/hardware.md).
        peak_gflops: peak rate at the mode's *base precision*, G ops/s with a MAC = 2 ops:
            fp32 for ``float`` and ``int8`` (the int8 gain multiplies it), W8A8 for
            ``bit_flexible`` and ``bit_serial``, the entry with relative latency 1 for ``table``.
        efficiency: per operator class, the fraction of peak that real training code reaches
            (:class:`Efficiency`; calibrate with ``fedsim profiles check --fit``).
        mem_bandwidth_gb_s: memory bandwidth that training code achieves, GB/s.
        op_overhead_us: fixed time per operator call (framework dispatch, kernel launch),
            charged once per conv/linear layer and element-wise operator per pass.
        int8_speedup: ``int8`` mode: gain over the float rate when weights and activations
            are both <= 8 bits.
        int4_extra_speedup: ``int8`` mode: further gain when both are <= 4 bits (1 = none).
        latency_table: ``table`` mode: relative latency grid.
    """

    mode: PrecisionMode
    peak_gflops: Gflops
    efficiency: Efficiency = Efficiency()
    mem_bandwidth_gb_s: GBps
    op_overhead_us: Microseconds = 0.0
    int8_speedup: SpeedUp | None = None
    int4_extra_speedup: SpeedUp = 1.0
    latency_table: LatencyTable | None = None

    @model_validator(mode="after")
    def _check_mode(self) -> ComputeProfile:
        if self.mode == "int8" and self.int8_speedup is None:
            raise ValueError("mode int8 needs int8_speedup (gain over float at <= 8 bits)")
        if self.mode != "int8" and self.int8_speedup is not None:
            raise ValueError(f"int8_speedup only applies to mode int8, not {self.mode}")
        if self.mode != "int8" and self.int4_extra_speedup != 1.0:
            raise ValueError(f"int4_extra_speedup only applies to mode int8, not {self.mode}")
        if self.mode == "table" and self.latency_table is None:
            raise ValueError("mode table needs latency_table")
        if self.mode != "table" and self.latency_table is not None:
            raise ValueError(f"latency_table only applies to mode table, not {self.mode}")
        return self


class PowerProfile(_Frozen):
    """Power model.

    ``measured`` (whole devices): compute energy = ``active_w`` x compute time.
    ``bottom_up`` (accelerators): compute energy = sum over MACs of
    ``mac_mult_pj * (b * a / 64) + mac_add_pj`` + bits moved x ``mem_pj_per_bit``
    + ``static_w`` x compute time. ``idle_w`` is drawn whenever the device is not computing.
    """

    model: Literal["measured", "bottom_up"] = "measured"
    active_w: PosWatts | None = None
    idle_w: Watts
    mac_mult_pj: PosPicojoules | None = None
    mac_add_pj: Picojoules | None = None
    mem_pj_per_bit: Picojoules | None = None
    static_w: Watts = 0.0

    @model_validator(mode="after")
    def _check_model(self) -> PowerProfile:
        bottom = ("mac_mult_pj", "mac_add_pj", "mem_pj_per_bit")
        if self.model == "measured":
            if self.active_w is None:
                raise ValueError("power model 'measured' needs active_w")
            if self.active_w < self.idle_w:
                raise ValueError(f"active_w ({self.active_w}) is below idle_w ({self.idle_w})")
            given = [k for k in bottom if getattr(self, k) is not None]
            if given or self.static_w:
                raise ValueError(
                    f"{', '.join(given or ['static_w'])} only apply to power model 'bottom_up'"
                )
        else:
            missing = [k for k in bottom if getattr(self, k) is None]
            if missing:
                raise ValueError(f"power model 'bottom_up' needs {', '.join(missing)}")
        return self


class MemoryProfile(_Frozen):
    """RAM and the fraction of it a training process may use (OS, apps, runtime take the rest)."""

    ram_mb: Megabytes
    usable_fraction: UsableFraction


class BatteryProfile(_Frozen):
    """Battery capacity; a device without one runs on mains (unlimited energy)."""

    capacity_wh: WattHours


class LinkProfile(_Frozen):
    """A network link and its radio power model (Huang et al. MobiSys 2012 form).

    A transfer of ``X`` bits at rate ``r`` Mbit/s (profile rate x sampled factor) takes
    ``promotion_s + rtt_s + X / (r 1e6) / duty_cycle`` seconds and costs
    ``promotion_w promotion_s + base_w rtt_s + (base_w + per_mbps_w r) airtime + tail_w tail_s``
    joules of radio energy, with ``base_w``/``per_mbps_w`` = ``tx_w``/``up_w_per_mbps`` for the
    uplink and ``rx_w``/``down_w_per_mbps`` for the downlink.

    Attributes:
        spread_sigma: sigma of a log-normal per-client bandwidth factor with median 1 (0 = none).
        duty_cycle: fraction of wall time the radio may transmit (LoRa: 0.01).
    """

    name: Name = "custom"
    kind: LinkKind
    description: str | None = None
    up_mbps: Mbps
    down_mbps: Mbps
    spread_sigma: Spread = 0.0
    rtt_s: Seconds = 0.0
    tx_w: Watts
    rx_w: Watts
    up_w_per_mbps: Watts = 0.0
    down_w_per_mbps: Watts = 0.0
    promotion_s: Seconds = 0.0
    promotion_w: Watts = 0.0
    tail_s: Seconds = 0.0
    tail_w: Watts = 0.0
    duty_cycle: DutyCycle = 1.0
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _check_sources(self) -> LinkProfile:
        _check_source_paths(type(self), self.sources)
        return self


def _link_tag(value: Any) -> str:
    return "name" if isinstance(value, str) else "inline"


LinkRef = Annotated[
    Annotated[LinkProfile, Tag("inline")] | Annotated[Name, Tag("name")],
    Discriminator(_link_tag),
]
#: Tags of the ``link`` union; the loader drops them from error key paths.


class DeviceProfile(_Frozen):
    """A device: compute, power, memory, network link, optional battery, and its sources.

    ``link`` is either an inline :class:`LinkProfile` or the name of a link profile (``lte``),
    which :class:`~fedsim.hardware.loader.ProfileLibrary` resolves; profiles obtained from the
    library always carry a resolved :class:`LinkProfile`. In YAML the class is spelled
    ``class:``; in Python it is ``device_class``.
    """

    name: Name
    device_class: DeviceClass = Field(alias="class")
    description: str | None = None
    compute: ComputeProfile
    power: PowerProfile
    memory: MemoryProfile
    link: LinkRef
    battery: BatteryProfile | None = None
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_sources(self) -> DeviceProfile:
        _check_source_paths(type(self), self.sources)
        return self

    @property
    def link_name(self) -> str:
        """Name of the link (the named profile, or the inline link's ``name``)."""
        return self.link if isinstance(self.link, str) else self.link.name

    @property
    def resolved_link(self) -> LinkProfile:
        """The link as a :class:`LinkProfile`; raises if it is still an unresolved name."""
        if isinstance(self.link, str):
            raise ValueError(
                f"profile {self.name}: link '{self.link}' is a name; resolve it with "
                "ProfileLibrary.resolve()"
            )
        return self.link


# --------------------------------------------------------------------------- structure helpers


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel subclasses inside an annotation (unwrapping Optional, unions, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            out.extend(_model_classes(arg))
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def field_keys(cls: type[BaseModel]) -> dict[str, str]:
    """YAML key -> Python field name for a model (aliases and plain names both accepted)."""
    out: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        out[info.alias or name] = name
        out[name] = name
    return out


def submodel(cls: type[BaseModel], key: str) -> type[BaseModel] | None:
    """The model class of field ``key`` of ``cls`` (None if that field is not a model)."""
    name = field_keys(cls).get(key)
    if name is None:
        return None
    classes = _model_classes(cls.model_fields[name].annotation)
    return classes[0] if classes else None


def resolve_path(cls: type[BaseModel], parts: list[str]) -> tuple[bool, int]:
    """Check a dotted path against the schema: (valid, index of the first bad part)."""
    current: type[BaseModel] | None = cls
    for i, part in enumerate(parts):
        if current is None or part not in field_keys(current):
            return False, i
        current = submodel(current, part)
    return True, len(parts)


def _check_source_paths(cls: type[BaseModel], sources: tuple[Source, ...]) -> None:
    for i, src in enumerate(sources):
        for j, path in enumerate(src.fields):
            ok, _ = resolve_path(cls, path.split("."))
            if not ok or path.split(".")[0] == "sources":
                raise ValueError(
                    f"sources[{i}].fields[{j}]: '{path}' is not a field of this profile "
                    f"(top-level keys: {', '.join(k for k in yaml_keys(cls) if k != 'sources')})"
                )


_NON_FIGURES = {"name", "class", "description", "sources", "mode", "model", "kind"}


def _figure_paths(data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the numeric figures (and latency tables) in a dumped profile."""
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _NON_FIGURES or value is None:
                continue
            path = f"{prefix}.{key}" if prefix else key
            if key == "latency_table":
                out.append(path)
            else:
                out.extend(_figure_paths(value, path))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out.append(prefix)
    return out


def _covered(path: str, covers: list[str]) -> bool:
    return any(path == c or path.startswith(c + ".") for c in covers)


def _set_figures(profile: DeviceProfile | LinkProfile) -> list[str]:
    dumped = profile.model_dump(by_alias=True, exclude_defaults=False)
    if isinstance(profile, DeviceProfile) and isinstance(profile.link, LinkProfile):
        # A resolved link is cited by its own file; an inline one must be cited here.
        dumped.pop("link")
    fields_set = _explicit_paths(profile)
    return [p for p in _figure_paths(dumped) if p in fields_set]


def _explicit_paths(model: BaseModel, prefix: str = "") -> set[str]:
    """Dotted YAML paths of fields that were given explicitly (defaults need no citation)."""
    out: set[str] = set()
    for name in model.model_fields_set:
        info = type(model).model_fields[name]
        key = info.alias or name
        path = f"{prefix}.{key}" if prefix else key
        value = getattr(model, name)
        out.add(path)
        if isinstance(value, BaseModel) and not isinstance(value, LatencyTable):
            out |= _explicit_paths(value, path)
    return out


def uncited_fields(profile: DeviceProfile | LinkProfile) -> list[str]:
    """Figures given in the profile that no ``sources`` entry covers (empty = fully cited)."""
    covers = [f for src in profile.sources for f in src.fields]
    return [p for p in _set_figures(profile) if not _covered(p, covers)]


def estimated_fields(profile: DeviceProfile | LinkProfile) -> list[str]:
    """Figures covered by a source marked ``estimate: true``."""
    covers = [f for src in profile.sources if src.estimate for f in src.fields]
    return [p for p in _set_figures(profile) if _covered(p, covers)]
