"""Training compute time and energy: an operator-aware roofline with the device's speed-up law.

Every operator of one training step is priced as ``max(compute at its class's efficiency,
bytes moved / bandwidth)``, summed over operators and passes (docs/hardware.md, section 2).
Per conv/linear layer ``l`` (forward MACs ``M_l`` per sample, ``P_l`` weights, ``I_l`` / ``O_l``
input / output elements per sample, weight bits ``b_l``, activation bits ``a_l``, batch ``B``)
and per element-wise operator ``e`` (``f_e`` flops, ``I_e + O_e`` elements per sample)::

    layer, forward         M B MACs   (P b + B (I + O) a) / 8 bytes
    layer, backward data   M B MACs   (P b + B (I + O) a) / 8 bytes
    layer, backward weight M B MACs   B (I + O) a / 8 + 4 P bytes  (the float gradient)
    element-wise e         3 f_e B flops, 3 x 4 B (I_e + O_e) bytes  (backward ~ 2x forward)
    optimizer step         4 N flops, 20 N bytes    (N = all parameters; SGD with momentum
                                                     reads weight, gradient, momentum and
                                                     writes weight, momentum, in float)
    t_op   = max( work / (eta_class R s(b, a)),  bytes / BW )   per operator and pass
    t_step = sum t_op + op_overhead (3 L + 2 E + 1 calls)
    time_s = S t_step                                             S local steps
    energy_j = P_active time_s                                     (power model measured)
             = S [sum MACs e_mac(b, a) + flops_ew mac_add_pj + 8 bytes e_mem] + P_static time_s
    e_mac(b, a) = mac_mult_pj (b a / 64) + mac_add_pj             (pJ, bottom_up)

``R = peak_gflops 1e9 / 2`` MAC/s for conv/linear (a MAC is 2 ops) and ``peak_gflops 1e9``
flop/s for element-wise work; ``eta_class`` is the profile's efficiency of the operator's
class (``dense_conv``, ``depthwise_conv``, ``linear``, ``elementwise``); ``BW`` in bytes/s.
Only conv/linear MACs get the precision law's speed-up ``s(b, a)``: element-wise work and the
optimizer run in float. Layers that are not quantized (1x1 shortcut convs) run at 32/32 bits;
quantized layers take their bit from the bit vector and ``act_bits`` (None = float, 32).

What is not charged: the bit-plane bookkeeping of FedMPQ-style training (assembling weights
from planes, one optimizer state per plane): it is method work on float units, which a
host's calibrated ``table`` profile measures. Time and energy are linear in ``steps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedsim.hardware.laws import speedup
from fedsim.hardware.schema import OP_CLASSES, ComputeProfile, DeviceProfile
from fedsim.spec import FLOAT_BITS, ModelSpec

MAC_OPS = 2.0  #: ops per multiply-accumulate in peak_gflops
GRAD_BYTES = 4.0  #: bytes per weight gradient written each step (float)
EW_PASSES = 3.0  #: element-wise work: forward + backward (about twice the forward)
EW_BYTES = 4.0  #: element-wise operators read and write float activations
OPT_FLOPS = 4.0  #: flops per parameter of an SGD-with-momentum step
OPT_BYTES = 20.0  #: bytes per parameter of that step (3 float reads, 2 float writes)
#: Columns of :func:`step_time_breakdown`: the operator classes, then these two.
BREAKDOWN: tuple[str, ...] = (*OP_CLASSES, "optimizer", "overhead")
_LAYER_CLASSES = OP_CLASSES[:3]


@dataclass(frozen=True)
class ComputeCost:
    """Simulated cost of local training: seconds and joules."""

    time_s: float
    energy_j: float


@dataclass(frozen=True)
class LayerTable:
    """The model's layer table as arrays: conv/linear layers (``L``), element-wise ops (``E``)."""

    macs: np.ndarray  # (L,) forward MACs per sample
    params: np.ndarray  # (L,) weights
    in_elems: np.ndarray  # (L,) input activation elements per sample
    act_elems: np.ndarray  # (L,) output activation elements per sample
    quantized: np.ndarray  # (L,) bool
    op_class: np.ndarray  # (L,) index into _LAYER_CLASSES
    ew_flops: np.ndarray  # (E,) forward flops per sample
    ew_elems: np.ndarray  # (E,) elements read + written per sample (forward)
    all_params: float  # every parameter the optimizer updates

    @classmethod
    def of(cls, spec: ModelSpec) -> LayerTable:
        layers = spec.layers
        ew = spec.elementwise
        return cls(
            macs=np.array([layer.macs for layer in layers], dtype=np.float64),
            params=np.array([layer.params for layer in layers], dtype=np.float64),
            in_elems=np.array([layer.in_elems for layer in layers], dtype=np.float64),
            act_elems=np.array([layer.act_elems for layer in layers], dtype=np.float64),
            quantized=np.array([layer.quantized for layer in layers], dtype=bool),
            op_class=np.array([_LAYER_CLASSES.index(layer.op_class) for layer in layers],
                              dtype=np.intp),
            ew_flops=np.array([e.flops for e in ew], dtype=np.float64),
            ew_elems=np.array([e.in_elems + e.out_elems for e in ew], dtype=np.float64),
            all_params=float(spec.total_params),
        )

    @property
    def n_calls(self) -> int:
        """Operator calls per step: 3 passes per layer, 2 per element-wise op, 1 optimizer."""
        return 3 * len(self.macs) + 2 * len(self.ew_flops) + 1


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


def layer_phase_bytes(
    table: LayerTable, w: np.ndarray, a: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bytes per (client, layer) of a forward (= backward-data) pass and of the weight pass."""
    acts = batch_size * (table.in_elems + table.act_elems) * a / 8.0
    return table.params * w / 8.0 + acts, acts + GRAD_BYTES * table.params


def step_time_breakdown(
    compute: ComputeProfile, table: LayerTable, w: np.ndarray, a: np.ndarray, batch_size: int
) -> np.ndarray:
    """Seconds per step of each :data:`BREAKDOWN` column, one row per bit vector in ``w``.

    ``w`` and ``a`` are (n, L) weight and activation bits of every layer (32 = float).
    """
    eff = np.array([compute.efficiency.of(c) for c in _LAYER_CLASSES])
    mac_rate = eff[table.op_class] * compute.peak_gflops * 1e9 / MAC_OPS  # (L,)
    flop_rate = compute.efficiency.elementwise * compute.peak_gflops * 1e9
    bw = compute.mem_bandwidth_gb_s * 1e9
    compute_s = table.macs * batch_size / (mac_rate * speedup(compute, w, a))  # (n, L)
    fwd_bytes, wgt_bytes = layer_phase_bytes(table, w, a, batch_size)
    t_layer = (2.0 * np.maximum(compute_s, fwd_bytes / bw)
               + np.maximum(compute_s, wgt_bytes / bw))
    out = np.zeros((w.shape[0], len(BREAKDOWN)))
    for k in range(len(_LAYER_CLASSES)):
        out[:, k] = t_layer[:, table.op_class == k].sum(axis=1)
    ew = EW_PASSES * np.maximum(table.ew_flops * batch_size / flop_rate,
                                EW_BYTES * table.ew_elems * batch_size / bw)
    out[:, 3] = ew.sum()
    out[:, 4] = max(OPT_FLOPS * table.all_params / flop_rate, OPT_BYTES * table.all_params / bw)
    out[:, 5] = compute.op_overhead_us * 1e-6 * table.n_calls
    return out


def step_work(
    table: LayerTable, w: np.ndarray, a: np.ndarray, batch_size: int
) -> tuple[np.ndarray, float, np.ndarray]:
    """Per step: MACs per layer (L,), element-wise + optimizer flops, bytes per client (n,)."""
    fwd_bytes, wgt_bytes = layer_phase_bytes(table, w, a, batch_size)
    layer_bytes = (2.0 * fwd_bytes + wgt_bytes).sum(axis=1)
    ew_bytes = EW_PASSES * EW_BYTES * table.ew_elems.sum() * batch_size
    ew_flops = EW_PASSES * table.ew_flops.sum() * batch_size + OPT_FLOPS * table.all_params
    macs = 3.0 * table.macs * batch_size
    return macs, float(ew_flops), layer_bytes + ew_bytes + OPT_BYTES * table.all_params


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

    time_s = np.empty(n)
    groups: dict[object, list[int]] = {}
    for i, p in enumerate(profiles):
        groups.setdefault(p.compute, []).append(i)
    for idx_list in groups.values():
        idx = np.asarray(idx_list)
        c = profiles[idx_list[0]].compute
        time_s[idx] = step_time_breakdown(c, table, w[idx], a[idx], batch_size).sum(axis=1)
    time_s *= steps_arr

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
        macs, ew_flops, traffic = step_work(table, w[bu], a[bu], batch_size)
        e_mac_pj = mult[:, None] * (w[bu] * a[bu] / 64.0) + add[:, None]
        per_step_pj = (macs * e_mac_pj).sum(axis=1) + ew_flops * add + 8.0 * traffic * mem
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
