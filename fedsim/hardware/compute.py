"""Training compute time and energy: a per-layer roofline with the device's speed-up law.

For layer ``l`` with forward MACs ``M_l`` per sample, ``P_l`` weights, ``A_l`` output
activation elements per sample, weight bits ``b_l`` and activation bits ``a_l``, batch ``B``
and ``S`` local steps (COST_MODEL.md sections 2 and 3)::

    ops_l     = 3 M_l B                                       MACs per step (backward ~ 2x forward)
    bytes_l   = 3 (P_l b_l + B A_l a_l) / 8 + 4 P_l           bytes per step (3 passes touch
                                                              weights and activations at their
                                                              bits; the float gradient is written)
    t_l       = max( ops_l / (eta R s(b_l, a_l)),  bytes_l / BW )     seconds per step
    time_s    = S sum_l t_l
    energy_j  = P_active time_s                                          (power model measured)
              = S sum_l [ops_l e_mac(b_l, a_l) + 8 bytes_l e_mem] + P_static time_s  (bottom_up)
    e_mac(b, a) = mac_mult_pj (b a / 64) + mac_add_pj                    (pJ)

``R = peak_gflops 1e9 / 2`` MAC/s (a MAC is 2 ops), ``eta = utilization``, ``BW`` in bytes/s.
Layers that are not quantized (1x1 shortcut convs) run at 32/32 bits; quantized layers take
their bit from the bit vector and the activation bits ``act_bits`` (None = float, 32).
Only conv/linear layers are charged; BatchNorm/ReLU work is left out (a few percent).

Time and energy are linear in ``steps``; there is no fixed per-round overhead here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedsim.hardware.laws import speedup
from fedsim.hardware.schema import DeviceProfile
from fedsim.spec import FLOAT_BITS, ModelSpec

MAC_OPS = 2.0  #: ops per multiply-accumulate in peak_gflops
TRAIN_PASSES = 3.0  #: forward + backward (data) + backward (weights), COST_MODEL.md section 1
GRAD_BYTES = 4.0  #: bytes per weight gradient written each step (float)


@dataclass(frozen=True)
class ComputeCost:
    """Simulated cost of local training: seconds and joules."""

    time_s: float
    energy_j: float


@dataclass(frozen=True)
class LayerTable:
    """The model's layer table as arrays (one entry per conv/linear layer)."""

    macs: np.ndarray  # (L,) forward MACs per sample
    params: np.ndarray  # (L,) weights
    act_elems: np.ndarray  # (L,) output activation elements per sample
    quantized: np.ndarray  # (L,) bool

    @classmethod
    def of(cls, spec: ModelSpec) -> LayerTable:
        layers = spec.layers
        return cls(
            macs=np.array([layer.macs for layer in layers], dtype=np.float64),
            params=np.array([layer.params for layer in layers], dtype=np.float64),
            act_elems=np.array([layer.act_elems for layer in layers], dtype=np.float64),
            quantized=np.array([layer.quantized for layer in layers], dtype=bool),
        )


def validate_bits(bits: np.ndarray, what: str = "bit-width") -> None:
    """Bits must be 1..16 or 32 (float), as on the wire (fedsim.payload)."""
    bad = ~(((bits >= 1) & (bits <= 16)) | (bits == FLOAT_BITS))
    if np.any(bad):
        raise ValueError(f"{what} must be 1..16 or 32, got {np.asarray(bits)[bad][0]}")


def bits_matrix(spec: ModelSpec, bits: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """(n_clients, n_quantized) bit vectors -> (n_clients, n_layers) bits, 32 for float layers."""
    b = np.asarray(bits)
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != spec.n_quantized:
        raise ValueError(
            f"bits must have shape (n_clients, {spec.n_quantized}) for model {spec.name}, "
            f"got {b.shape}"
        )
    if b.size and not np.all(b == np.round(b)):
        raise ValueError("bit-widths must be integers")
    b = b.astype(np.int64)
    validate_bits(b)
    q = np.array([layer.quantized for layer in spec.layers], dtype=bool)
    full = np.full((b.shape[0], len(spec.layers)), FLOAT_BITS, dtype=np.int64)
    full[:, q] = b
    return full


def act_bits_matrix(
    spec: ModelSpec, act_bits: int | np.ndarray | None, n_clients: int
) -> np.ndarray:
    """Activation bits per (client, layer): ``act_bits`` on quantized layers, 32 elsewhere."""
    if act_bits is None:
        per_client = np.full(n_clients, FLOAT_BITS, dtype=np.int64)
    else:
        per_client = np.broadcast_to(np.asarray(act_bits, dtype=np.int64), (n_clients,)).copy()
        validate_bits(per_client, "act_bits")
    q = np.array([layer.quantized for layer in spec.layers], dtype=bool)
    out = np.full((n_clients, len(spec.layers)), FLOAT_BITS, dtype=np.int64)
    out[:, q] = per_client[:, None]
    return out


def _check_batch_steps(batch_size: int, steps: np.ndarray) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if np.any(steps < 0):
        raise ValueError("steps must be >= 0")


def step_traffic_bytes(
    table: LayerTable, w: np.ndarray, a: np.ndarray, batch_size: int
) -> np.ndarray:
    """Bytes moved per step per (client, layer): see the module docstring."""
    return (
        TRAIN_PASSES * (table.params * w + batch_size * table.act_elems * a) / 8.0
        + GRAD_BYTES * table.params
    )


def train_cost_batch(
    profiles: Sequence[DeviceProfile],
    spec: ModelSpec,
    bits: np.ndarray | Sequence[Sequence[int]],
    *,
    act_bits: int | np.ndarray | None,
    batch_size: int,
    steps: np.ndarray | int,
) -> tuple[np.ndarray, np.ndarray]:
    """Training time (s) and energy (J) of ``steps`` local steps, one row per client.

    Args:
        profiles: one device profile per client (objects may repeat; clients are grouped by
            equal compute sections, so 10^5 clients on a few profiles cost a few array ops).
        spec: the model's layer table.
        bits: (n_clients, n_quantized) weight bits, 1..16 or 32 (float).
        act_bits: activation bits of quantized layers (int, or one per client); None = float.
        batch_size: samples per step.
        steps: local steps, one int for all or one per client.

    Returns:
        ``(time_s, energy_j)``, float arrays of shape (n_clients,).
    """
    n = len(profiles)
    w = bits_matrix(spec, bits)
    if w.shape[0] != n:
        raise ValueError(f"{n} profiles but {w.shape[0]} bit vectors")
    a = act_bits_matrix(spec, act_bits, n)
    steps_arr = np.broadcast_to(np.asarray(steps, dtype=np.float64), (n,))
    _check_batch_steps(batch_size, steps_arr)
    table = LayerTable.of(spec)

    rate = np.empty(n)  # effective MAC/s (eta R)
    bw = np.empty(n)  # bytes/s
    s = np.empty(w.shape)
    groups: dict[object, list[int]] = {}
    for i, p in enumerate(profiles):
        groups.setdefault(p.compute, []).append(i)
    for idx_list in groups.values():
        idx = np.asarray(idx_list)
        c = profiles[idx_list[0]].compute
        rate[idx] = c.utilization * c.peak_gflops * 1e9 / MAC_OPS
        bw[idx] = c.mem_bandwidth_gb_s * 1e9
        s[idx] = speedup(c, w[idx], a[idx])

    ops = TRAIN_PASSES * table.macs * batch_size  # (L,) MACs per step
    traffic = step_traffic_bytes(table, w, a, batch_size)  # (n, L)
    t_layer = np.maximum(ops / (rate[:, None] * s), traffic / bw[:, None])
    time_s = steps_arr * t_layer.sum(axis=1)

    energy_j = np.empty(n)
    measured = np.array([p.power.model == "measured" for p in profiles], dtype=bool)
    if measured.any():
        active = np.array([p.power.active_w or 0.0 for p in profiles])
        energy_j[measured] = (active * time_s)[measured]
    if (~measured).any():
        bu = np.flatnonzero(~measured)
        mult = np.array([profiles[i].power.mac_mult_pj or 0.0 for i in bu])
        add = np.array([profiles[i].power.mac_add_pj or 0.0 for i in bu])
        mem = np.array([profiles[i].power.mem_pj_per_bit or 0.0 for i in bu])
        static = np.array([profiles[i].power.static_w for i in bu])
        e_mac_pj = mult[:, None] * (w[bu] * a[bu] / 64.0) + add[:, None]
        per_step_pj = (ops * e_mac_pj).sum(axis=1) + 8.0 * traffic[bu].sum(axis=1) * mem
        energy_j[bu] = steps_arr[bu] * per_step_pj * 1e-12 + static * time_s[bu]
    return time_s, energy_j


def train_cost(
    profile: DeviceProfile,
    spec: ModelSpec,
    bits: Sequence[int],
    *,
    act_bits: int | None,
    batch_size: int,
    steps: int,
) -> ComputeCost:
    """Time (s) and energy (J) of ``steps`` local training steps on one device.

    ``bits`` has one entry per *quantized* layer (the bit vector; 32 = float layer);
    ``act_bits`` None means float activations. Same numbers as :func:`train_cost_batch`.
    """
    t, e = train_cost_batch(
        [profile], spec, [list(bits)], act_bits=act_bits, batch_size=batch_size, steps=steps
    )
    return ComputeCost(time_s=float(t[0]), energy_j=float(e[0]))
