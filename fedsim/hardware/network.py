"""Transfer time and radio energy from payload bits (docs/hardware.md section 6).

For ``X`` bits at rate ``r = rate_mbps x bandwidth_factor`` Mbit/s::

    airtime_s = X / (r 1e6)
    time_s    = promotion_s + rtt_s + airtime_s / duty_cycle
    energy_j  = promotion_w promotion_s + base_w rtt_s
              + (base_w + per_mbps_w r) airtime_s + tail_w tail_s

``base_w``/``per_mbps_w`` are ``tx_w``/``up_w_per_mbps`` uplink and ``rx_w``/``down_w_per_mbps``
downlink (Huang et al. MobiSys 2012's LTE model: power = alpha x throughput + beta). Every
transfer is charged as if the radio started idle (promotion) and idled after it (the full
tail): two small transfers cost more than one of their sum, which is what makes fewer bits
give diminishing returns on cellular links. The tail is energy, not time: the device may
compute while the radio idles down. Radio energy is *on top of* the device's idle power (the
caller charges ``idle_w`` for the time; see ``fedsim.hardware.energy.round_cost``). A payload
of 0 bits is no transfer: zero time and energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedsim.hardware.schema import LinkProfile


@dataclass(frozen=True)
class TransferCost:
    """Simulated cost of one transfer: seconds and joules of radio energy."""

    time_s: float
    energy_j: float


def _direction_terms(link: LinkProfile, direction: str) -> tuple[float, float, float]:
    if direction == "up":
        return link.up_mbps, link.tx_w, link.up_w_per_mbps
    if direction == "down":
        return link.down_mbps, link.rx_w, link.down_w_per_mbps
    raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")


def transfer_cost(
    link: LinkProfile,
    payload_bits: int,
    *,
    direction: Literal["up", "down"],
    bandwidth_factor: float = 1.0,
    include_promotion: bool = True,
    include_tail: bool = True,
) -> TransferCost:
    """Time (s) and radio energy (J) of moving ``payload_bits`` over ``link``.

    Args:
        bandwidth_factor: this client's multiplier on the link's rate (from
            :func:`sample_bandwidth_factor`); must be > 0.
        include_promotion / include_tail: set False when the engine knows the radio is
            already awake (back-to-back transfers) or stays busy afterwards.
    """
    # Scalar path (the engine calls this per client and phase): the same arithmetic as
    # transfer_cost_batch, in the same order, without numpy's per-call overhead.
    if payload_bits < 0:
        raise ValueError("payload_bits must be >= 0")
    if not (bandwidth_factor > 0) or bandwidth_factor == float("inf"):
        raise ValueError("bandwidth_factor must be finite and > 0")
    if payload_bits == 0:
        return TransferCost(time_s=0.0, energy_j=0.0)
    rate, base_w, per_w = _direction_terms(link, direction)
    promo_s = link.promotion_s if include_promotion else 0.0
    tail_s = link.tail_s if include_tail else 0.0
    rate_mbps = rate * float(bandwidth_factor)
    airtime = float(payload_bits) / (rate_mbps * 1e6)
    time_s = promo_s + link.rtt_s + airtime / link.duty_cycle
    energy_j = (link.promotion_w * promo_s + base_w * link.rtt_s
                + (base_w + per_w * rate_mbps) * airtime + link.tail_w * tail_s)
    return TransferCost(time_s=time_s, energy_j=energy_j)


def transfer_cost_batch(
    links: Sequence[LinkProfile] | LinkProfile,
    payload_bits: np.ndarray | Sequence[int],
    *,
    direction: Literal["up", "down"],
    bandwidth_factor: np.ndarray | float = 1.0,
    include_promotion: bool = True,
    include_tail: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`transfer_cost`: ``(time_s, energy_j)`` arrays, one per client."""
    bits = np.asarray(payload_bits, dtype=np.float64)
    if bits.ndim != 1:
        bits = bits.reshape(-1)
    n = bits.shape[0]
    if isinstance(links, LinkProfile):
        links = [links] * n
    if len(links) != n:
        raise ValueError(f"{len(links)} links but {n} payloads")
    if np.any(bits < 0):
        raise ValueError("payload_bits must be >= 0")
    factor = np.broadcast_to(np.asarray(bandwidth_factor, dtype=np.float64), (n,))
    if np.any(~(factor > 0)) or np.any(~np.isfinite(factor)):
        raise ValueError("bandwidth_factor must be finite and > 0")

    cols = np.empty((n, 10))
    cache: dict[int, tuple[float, ...]] = {}
    for i, link in enumerate(links):
        row = cache.get(id(link))
        if row is None:
            rate, base, per = _direction_terms(link, direction)
            row = (
                rate,
                base,
                per,
                link.rtt_s,
                link.duty_cycle,
                link.promotion_s if include_promotion else 0.0,
                link.promotion_w,
                link.tail_s if include_tail else 0.0,
                link.tail_w,
                0.0,
            )
            cache[id(link)] = row
        cols[i] = row
    rate_mbps = cols[:, 0] * factor
    base_w, per_w, rtt, duty = cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4]
    promo_s, promo_w, tail_s, tail_w = cols[:, 5], cols[:, 6], cols[:, 7], cols[:, 8]

    airtime = bits / (rate_mbps * 1e6)
    time_s = promo_s + rtt + airtime / duty
    energy_j = (
        promo_w * promo_s + base_w * rtt + (base_w + per_w * rate_mbps) * airtime + tail_w * tail_s
    )
    none = bits == 0
    time_s[none] = 0.0
    energy_j[none] = 0.0
    return time_s, energy_j


def sample_bandwidth_factor(link: LinkProfile, rng: np.random.Generator) -> float:
    """A client's bandwidth multiplier: log-normal, median 1, sigma ``link.spread_sigma``.

    With ``spread_sigma == 0`` it returns exactly 1.0 and draws nothing from ``rng`` (so
    switching spread on for one link never shifts another stream; fedsim derives one stream
    per purpose anyway). The same factor applies to up- and downlink.
    """
    if link.spread_sigma == 0:
        return 1.0
    return float(rng.lognormal(mean=0.0, sigma=link.spread_sigma))


def sample_bandwidth_factors(link: LinkProfile, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` factors at once (same rules as :func:`sample_bandwidth_factor`)."""
    if link.spread_sigma == 0:
        return np.ones(size)
    return rng.lognormal(mean=0.0, sigma=link.spread_sigma, size=size)
