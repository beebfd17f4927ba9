"""Training memory footprint per bit configuration, and the feasibility check.

docs/hardware.md section 5::

    train_bytes = sum_l P_l per_param(b_l)  +  F opt_bytes
                + B (sum_l A_l + A_other + X) act_bytes
                + 2 B max_l(A_l) 4                           (workspace)

    per_param(32) = opt_bytes            float layer: weight + gradient (+ optimizer state)
    per_param(b)  = b opt_bytes          bit-plane layer: b float planes, each with its own
                                          gradient and optimizer state (~12 b B with momentum)
    opt_bytes     = 8 (sgd), 12 (momentum), 16 (adam)

``F`` float parameters (biases, BatchNorm), ``A_other`` saved activations of non conv/linear
ops, ``X`` input elements per sample. Fake-quantized training saves activations in float:
``act_bytes = 4`` whatever ``act_bits`` is (``fake_quant=False`` models hypothetical true
low-precision training, ``act_bits / 8``). The workspace is the float gradient buffers (in
and out) of the widest layer. Sign tensors and per-layer scales are not counted (<= 1/12 of a
plane layer's state).

Note the bit-plane representation: per-parameter bytes rise with bits from 1 to 16, and a
float layer (32) needs *less* than an 8-bit plane layer (12 B vs 96 B): "fewer bits never
need more memory" holds across plane widths, not between planes and float.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fedsim.hardware.compute import bits_matrix
from fedsim.hardware.schema import DeviceProfile
from fedsim.spec import FLOAT_BITS, ModelSpec

OPTIMIZER_BYTES = {"sgd": 8, "momentum": 12, "adam": 16}  #: bytes per float parameter
FLOAT_BYTES = 4
MIB = 2**20


def _opt_bytes(optimizer: str) -> int:
    try:
        return OPTIMIZER_BYTES[optimizer]
    except KeyError:
        raise ValueError(
            f"optimizer must be one of {', '.join(OPTIMIZER_BYTES)}, got {optimizer!r}"
        ) from None


def _act_bytes(act_bits: int | None, fake_quant: bool) -> float:
    if fake_quant or act_bits is None or act_bits >= FLOAT_BITS:
        return float(FLOAT_BYTES)
    return act_bits / 8.0


def train_memory_bytes_batch(
    spec: ModelSpec,
    bits: np.ndarray | Sequence[Sequence[int]],
    *,
    batch_size: int,
    act_bits: int | None,
    optimizer: str = "momentum",
    fake_quant: bool = True,
) -> np.ndarray:
    """Training footprint in bytes, one per bit vector (rows of ``bits``); int64 array."""
    opt = _opt_bytes(optimizer)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    w = bits_matrix(spec, bits)
    params = np.array([layer.params for layer in spec.layers], dtype=np.int64)
    per_param = np.where(w >= FLOAT_BITS, opt, w * opt).astype(np.int64)
    state = (per_param * params).sum(axis=1) + spec.float_params * opt
    acts = [layer.act_elems for layer in spec.layers]
    saved = sum(acts) + spec.other_act_elems + spec.input_elems
    act_total = math.ceil(batch_size * saved * _act_bytes(act_bits, fake_quant))
    workspace = 2 * batch_size * max(acts, default=0) * FLOAT_BYTES
    return state + act_total + workspace


def train_memory_bytes(
    spec: ModelSpec,
    bits: Sequence[int],
    *,
    batch_size: int,
    act_bits: int | None,
    optimizer: str = "momentum",
    fake_quant: bool = True,
) -> int:
    """Bytes needed to train ``spec`` at bit vector ``bits`` (one per quantized layer)."""
    out = train_memory_bytes_batch(
        spec,
        [list(bits)],
        batch_size=batch_size,
        act_bits=act_bits,
        optimizer=optimizer,
        fake_quant=fake_quant,
    )
    return int(out[0])


def usable_memory_bytes(profile: DeviceProfile) -> int:
    """``floor(ram_mb 2^20 usable_fraction)`` bytes a training process may use."""
    return math.floor(profile.memory.ram_mb * MIB * profile.memory.usable_fraction)


def format_bytes(n: float) -> str:
    """Human size in binary units: ``3.1 GB`` (GiB), ``640 KB`` (KiB), ``12 B``."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def memory_reason(profile: DeviceProfile, needed: int) -> str | None:
    """The human reason a footprint of ``needed`` bytes does not fit (None if it fits)."""
    usable = usable_memory_bytes(profile)
    if needed <= usable:
        return None
    m = profile.memory
    return (
        f"needs {format_bytes(needed)}, usable {format_bytes(usable)} "
        f"({format_bytes(m.ram_mb * MIB)} x {m.usable_fraction:g}): "
        f"{format_bytes(needed - usable)} over"
    )


def check_memory(
    profile: DeviceProfile,
    spec: ModelSpec,
    bits: Sequence[int],
    *,
    batch_size: int,
    act_bits: int | None,
    optimizer: str = "momentum",
) -> str | None:
    """None if the configuration fits the device's usable RAM, else why not.

    Example reason: ``needs 3.1 GB, usable 2 GB (4 GB x 0.5): 1.1 GB over``.
    """
    need = train_memory_bytes(
        spec, bits, batch_size=batch_size, act_bits=act_bits, optimizer=optimizer
    )
    return memory_reason(profile, need)


def check_memory_batch(
    profiles: Sequence[DeviceProfile],
    spec: ModelSpec,
    bits: np.ndarray | Sequence[Sequence[int]],
    *,
    batch_size: int,
    act_bits: int | None,
    optimizer: str = "momentum",
) -> np.ndarray:
    """Boolean array: True where client i's configuration fits (reasons via memory_reason)."""
    need = train_memory_bytes_batch(
        spec, bits, batch_size=batch_size, act_bits=act_bits, optimizer=optimizer
    )
    if len(need) != len(profiles):
        raise ValueError(f"{len(profiles)} profiles but {len(need)} bit vectors")
    cache: dict[int, int] = {}
    usable = np.array(
        [cache.setdefault(id(p), usable_memory_bytes(p)) for p in profiles], dtype=np.int64
    )
    return need <= usable
