"""Hardware profiles and the cost model: (layer table, per-layer bits, device) -> time,
energy, memory; (payload bits, link) -> time, radio energy.

No torch, no SimPy: everything here takes a :class:`~fedsim.spec.ModelSpec`, bit vectors and
profiles and returns numbers (seconds, joules, bytes), vectorised over clients with numpy
where the engine needs it. The equations, their units and sources are in docs/hardware.md.

Caveat (docs/hardware.md section 1): fedsim trains with fake quantization, which computes in
float. Bits speed up compute only under a profile's precision mode that can exploit them
(``int8``, ``bit_flexible``, ``bit_serial``, ``table``); under ``float`` they shrink memory
traffic, memory-bound time and payloads, never the arithmetic.
"""

from fedsim.hardware.compute import ComputeCost, train_cost, train_cost_batch
from fedsim.hardware.describe import describe
from fedsim.hardware.energy import RoundCost, battery_j, idle_energy_j, round_cost
from fedsim.hardware.laws import describe_law, speedup
from fedsim.hardware.loader import (
    ProfileLibrary,
    apply_override,
    builtin_profiles_dir,
    load_any_file,
    load_link_file,
    load_profile_file,
)
from fedsim.hardware.memory import (
    check_memory,
    check_memory_batch,
    format_bytes,
    memory_reason,
    train_memory_bytes,
    train_memory_bytes_batch,
    usable_memory_bytes,
)
from fedsim.hardware.network import (
    TransferCost,
    sample_bandwidth_factor,
    sample_bandwidth_factors,
    transfer_cost,
    transfer_cost_batch,
)
from fedsim.hardware.schema import (
    DEVICE_CLASSES,
    LINK_KINDS,
    PRECISION_MODES,
    BatteryProfile,
    ComputeProfile,
    DeviceProfile,
    LatencyTable,
    LinkProfile,
    MemoryProfile,
    PowerProfile,
    Source,
    estimated_fields,
    uncited_fields,
)

__all__ = [
    "DEVICE_CLASSES",
    "LINK_KINDS",
    "PRECISION_MODES",
    "BatteryProfile",
    "ComputeCost",
    "ComputeProfile",
    "DeviceProfile",
    "LatencyTable",
    "LinkProfile",
    "MemoryProfile",
    "PowerProfile",
    "ProfileLibrary",
    "RoundCost",
    "Source",
    "TransferCost",
    "apply_override",
    "battery_j",
    "builtin_profiles_dir",
    "check_memory",
    "check_memory_batch",
    "describe",
    "describe_law",
    "estimated_fields",
    "format_bytes",
    "idle_energy_j",
    "load_any_file",
    "load_link_file",
    "load_profile_file",
    "memory_reason",
    "round_cost",
    "sample_bandwidth_factor",
    "sample_bandwidth_factors",
    "speedup",
    "train_cost",
    "train_cost_batch",
    "train_memory_bytes",
    "train_memory_bytes_batch",
    "transfer_cost",
    "transfer_cost_batch",
    "uncited_fields",
    "usable_memory_bytes",
]
