"""Energy by phase (compute, uplink, downlink, idle) and battery capacity.

Phases are disjoint and add up to the client's energy in a round:

* compute: ``train_cost`` energy (``active_w`` x time, or bottom-up);
* downlink / uplink: radio energy of the transfers (``transfer_cost``), on top of the baseline;
* idle: the device's baseline ``idle_w`` for every second of the round it is not computing
  (waiting for the round to close, and while its radio transfers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedsim.hardware.compute import train_cost
from fedsim.hardware.network import transfer_cost
from fedsim.hardware.schema import DeviceProfile, LinkProfile
from fedsim.payload import model_payload_bits
from fedsim.spec import ModelSpec


def idle_energy_j(profile: DeviceProfile, seconds: float) -> float:
    """Joules drawn at ``power.idle_w`` for ``seconds`` (>= 0)."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    return profile.power.idle_w * seconds


def battery_j(profile: DeviceProfile) -> float:
    """Battery capacity in joules (``capacity_wh`` x 3600); ``inf`` for mains-powered devices."""
    if profile.battery is None:
        return float("inf")
    return profile.battery.capacity_wh * 3600.0


@dataclass(frozen=True)
class RoundCost:
    """One client's round, by phase: seconds and joules."""

    downlink_s: float
    compute_s: float
    uplink_s: float
    idle_s: float
    downlink_j: float
    compute_j: float
    uplink_j: float
    idle_j: float

    @property
    def busy_s(self) -> float:
        """Downlink + compute + uplink, back to back."""
        return self.downlink_s + self.compute_s + self.uplink_s

    @property
    def energy_j(self) -> float:
        """Total of the four phases."""
        return self.downlink_j + self.compute_j + self.uplink_j + self.idle_j

    def energy_by_phase(self) -> dict[str, float]:
        return {
            "compute": self.compute_j,
            "uplink": self.uplink_j,
            "downlink": self.downlink_j,
            "idle": self.idle_j,
        }


def round_cost(
    profile: DeviceProfile,
    spec: ModelSpec,
    bits_down: Sequence[int],
    bits_up: Sequence[int],
    *,
    act_bits: int | None,
    batch_size: int,
    steps: int,
    round_s: float | None = None,
    link: LinkProfile | None = None,
    bandwidth_factor: float = 1.0,
) -> RoundCost:
    """Downlink at ``bits_down``, train at ``bits_down``, upload at ``bits_up``.

    ``round_s`` is the round's length from the client's point of view (None = it leaves as
    soon as its upload ends); idle covers ``round_s - compute_s`` (or the transfer time when
    ``round_s`` is None). ``link`` defaults to the profile's resolved link.
    """
    link = link or profile.resolved_link
    down = transfer_cost(
        link,
        model_payload_bits(spec, bits_down),
        direction="down",
        bandwidth_factor=bandwidth_factor,
    )
    comp = train_cost(
        profile, spec, bits_down, act_bits=act_bits, batch_size=batch_size, steps=steps
    )
    up = transfer_cost(
        link, model_payload_bits(spec, bits_up), direction="up", bandwidth_factor=bandwidth_factor
    )
    non_compute = down.time_s + up.time_s
    if round_s is not None:
        non_compute = max(round_s - comp.time_s, non_compute)
    return RoundCost(
        downlink_s=down.time_s,
        compute_s=comp.time_s,
        uplink_s=up.time_s,
        idle_s=non_compute,
        downlink_j=down.energy_j,
        compute_j=comp.energy_j,
        uplink_j=up.energy_j,
        idle_j=idle_energy_j(profile, non_compute),
    )
