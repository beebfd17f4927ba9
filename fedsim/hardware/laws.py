"""Speed-up laws ``s_mode(b, a)``: how much faster a MAC runs at ``b`` weight bits and ``a``
activation bits than at the device's base rate (docs/hardware.md section 3).

All functions are vectorised: ``w`` and ``a`` are integer arrays of the same shape (32 means a
float operand), the result is a float array of that shape. Fewer bits never give a smaller
speed-up under any law of the shipped profiles (tested); the one exception is a measured
``table`` with ``monotone: false`` (a host calibrated by ``fedsim profiles calibrate``, where
fake-quant training on float units costs more than float training).

| mode | s(b, a) |
|---|---|
| ``float`` | 1: fake-quant training runs on float units, bits change only memory traffic |
| ``int8`` | ``int8_speedup`` if b, a <= 8, times ``int4_extra_speedup`` if b, a <= 4; else 1 |
| ``bit_flexible`` | 64 / (q(b) q(a)), q rounds up to a power of two >= 2 (Bit Fusion) |
| ``bit_serial`` | 64 / (b a) (BISMO, Stripes) |
| ``table`` | 1 / relative_latency(b, a), bilinear in bits on the profile's grid |
"""

from __future__ import annotations

import numpy as np

from fedsim.hardware.schema import ComputeProfile, LatencyTable


def speedup(compute: ComputeProfile, w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Speed-up over ``compute.peak_gflops`` for MACs at ``w`` x ``a`` bits (broadcast)."""
    w = np.asarray(w, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    w, a = np.broadcast_arrays(w, a)
    mode = compute.mode
    if mode == "float":
        return np.ones(w.shape)
    if mode == "int8":
        assert compute.int8_speedup is not None  # guaranteed by the schema
        s = np.where((w <= 8) & (a <= 8), compute.int8_speedup, 1.0)
        return s * np.where((w <= 4) & (a <= 4), compute.int4_extra_speedup, 1.0)
    if mode == "bit_flexible":
        return 64.0 / (fusion_bits(w) * fusion_bits(a))
    if mode == "bit_serial":
        return 64.0 / (w * a)
    if mode == "table":
        assert compute.latency_table is not None
        return 1.0 / relative_latency(compute.latency_table, w, a)
    raise ValueError(f"unknown precision mode {mode!r}")


def fusion_bits(bits: np.ndarray) -> np.ndarray:
    """Bit Fusion's operand width: ``bits`` rounded up to 2, 4, 8, 16 or 32 (2-bit BitBricks)."""
    b = np.maximum(np.asarray(bits, dtype=np.float64), 2.0)
    return 2.0 ** np.ceil(np.log2(b))


def relative_latency(table: LatencyTable, w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of the table in (bits, bits), clamped to the grid's range."""
    wx = np.asarray(table.w_bits, dtype=np.float64)
    ax = np.asarray(table.a_bits, dtype=np.float64)
    v = np.asarray(table.relative_latency, dtype=np.float64)
    w = np.clip(np.asarray(w, dtype=np.float64), wx[0], wx[-1])
    a = np.clip(np.asarray(a, dtype=np.float64), ax[0], ax[-1])
    i, fw = _bracket(wx, w)
    j, fa = _bracket(ax, a)
    i1 = np.minimum(i + 1, len(wx) - 1)
    j1 = np.minimum(j + 1, len(ax) - 1)
    top = v[i, j] * (1 - fa) + v[i, j1] * fa
    bottom = v[i1, j] * (1 - fa) + v[i1, j1] * fa
    return top * (1 - fw) + bottom * fw


def _bracket(axis: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the grid point at or below ``x`` and the fraction towards the next one."""
    if len(axis) == 1:
        return np.zeros(x.shape, dtype=np.intp), np.zeros(x.shape)
    i = np.clip(np.searchsorted(axis, x, side="right") - 1, 0, len(axis) - 2)
    frac = (x - axis[i]) / (axis[i + 1] - axis[i])
    return i, np.clip(frac, 0.0, 1.0)


def describe_law(compute: ComputeProfile) -> str:
    """One line saying which law a result assumed (for reports and ``profiles show``)."""
    mode = compute.mode
    if mode == "float":
        return "float: s = 1 (bits change only memory traffic and payload, not compute speed)"
    if mode == "int8":
        extra = (
            f", x{compute.int4_extra_speedup:g} more when both <= 4 bits"
            if compute.int4_extra_speedup != 1.0
            else ""
        )
        return (
            f"int8: s = {compute.int8_speedup:g} when weights and activations are <= 8 bits"
            f"{extra}; else 1 (float activations get no gain)"
        )
    if mode == "bit_flexible":
        return "bit_flexible: s = 64 / (q(b) q(a)), q = bits rounded up to 2/4/8/16/32 (Bit Fusion)"
    if mode == "bit_serial":
        return "bit_serial: s = 64 / (b a) relative to W8A8"
    t = compute.latency_table
    assert t is not None
    return (
        f"table: s = 1 / relative latency, bilinear over w_bits {list(t.w_bits)} x "
        f"a_bits {list(t.a_bits)}"
    )
