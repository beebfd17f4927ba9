"""Human-readable (field, value) rows of a profile, for ``fedsim profiles show`` and reports."""

from __future__ import annotations

from typing import Any

from fedsim.hardware.laws import describe_law
from fedsim.hardware.memory import MIB, format_bytes, usable_memory_bytes
from fedsim.hardware.schema import (
    DeviceProfile,
    LatencyTable,
    LinkProfile,
    estimated_fields,
    uncited_fields,
)

_UNITS = (  # longest suffix first
    ("_w_per_mbps", "W per Mbit/s"),
    ("_pj_per_bit", "pJ/bit"),
    ("_gb_s", "GB/s"),
    ("_gflops", "G ops/s (MAC = 2 ops)"),
    ("_mbps", "Mbit/s"),
    ("_pj", "pJ"),
    ("_wh", "Wh"),
    ("_mb", "MiB"),
    ("_w", "W"),
    ("_s", "s"),
)


def _unit(key: str) -> str:
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return " " + unit
    return ""


def _rows(data: dict[str, Any], prefix: str, estimates: set[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in ("sources", "name") or value is None:
            continue
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key != "latency_table":
            out.extend(_rows(value, path, estimates))
            continue
        if key == "latency_table":
            t = LatencyTable.model_validate(value)
            text = "; ".join(
                f"W{w}: " + ", ".join(f"A{a}={v:g}" for a, v in zip(t.a_bits, row, strict=True))
                for w, row in zip(t.w_bits, t.relative_latency, strict=True)
            )
        elif isinstance(value, float):
            text = f"{value:g}{_unit(key)}"
        else:
            text = f"{value}{_unit(key)}"
        if path in estimates:
            text += " (estimate)"
        out.append((path, text))
    return out


def describe(profile: DeviceProfile | LinkProfile) -> list[tuple[str, str]]:
    """(field, value) rows with units; estimates marked; the speed-up law spelled out.

    Fields left at their defaults are omitted (except the power model).
    """
    data = profile.model_dump(by_alias=True, exclude_defaults=True)
    data.pop("name", None)
    if isinstance(profile, DeviceProfile):  # every class's efficiency, defaults included
        data.setdefault("compute", {})["efficiency"] = profile.compute.efficiency.model_dump()
    estimates = set(estimated_fields(profile))
    rows: list[tuple[str, str]] = [("name", profile.name)]
    if isinstance(profile, DeviceProfile):
        data["power"] = {"model": profile.power.model, **data["power"]}
        link = profile.link
        if isinstance(link, LinkProfile):
            data["link"] = link.model_dump(by_alias=True, exclude_defaults=True)
            estimates |= {f"link.{p}" for p in estimated_fields(link)}
        for key, value in _rows(data, "", estimates):
            if key == "compute.mode":
                rows.append((key, value))
                rows.append(("compute.law", describe_law(profile.compute)))
            elif key == "link.kind" and isinstance(link, LinkProfile):
                rows.append(("link", link.name))
                rows.append((key, value))
            else:
                rows.append((key, value))
        m = profile.memory
        rows.append(
            (
                "memory.usable",
                f"{format_bytes(usable_memory_bytes(profile))} "
                f"({format_bytes(m.ram_mb * MIB)} x {m.usable_fraction:g})",
            )
        )
        if profile.battery is None:
            rows.append(("battery", "none (mains powered)"))
    else:
        rows.extend(_rows(data, "", estimates))
    for i, src in enumerate(profile.sources):
        tag = " [estimate]" if src.estimate else ""
        url = f" <{src.url}>" if src.url else ""
        rows.append((f"sources[{i}]", f"{', '.join(src.fields)}: {src.cite}{url}{tag}"))
    missing = uncited_fields(profile)
    if missing:
        rows.append(("uncited", ", ".join(missing)))
    return rows
