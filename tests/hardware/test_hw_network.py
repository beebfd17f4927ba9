"""Transfer time, radio energy with promotion and tail, and bandwidth sampling."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.hardware import (
    sample_bandwidth_factor,
    sample_bandwidth_factors,
    transfer_cost,
    transfer_cost_batch,
)


def test_uplink_by_hand(make_link):
    link = make_link()
    c = transfer_cost(link, 6_000_000, direction="up")  # 1 s of airtime at 6 Mbit/s
    assert c.time_s == pytest.approx(0.25 + 0.05 + 1.0)
    # promotion 1.2 x 0.25 + base 1.0 x 0.05 + (1.0 + 0.5 x 6) x 1 + tail 1.0 x 10
    assert c.energy_j == pytest.approx(0.3 + 0.05 + 4.0 + 10.0)


def test_downlink_by_hand_with_bandwidth_factor(make_link):
    link = make_link()
    c = transfer_cost(link, 12_000_000, direction="down", bandwidth_factor=0.5)  # 6 Mbit/s: 2 s
    assert c.time_s == pytest.approx(0.25 + 0.05 + 2.0)
    assert c.energy_j == pytest.approx(0.3 + 0.5 * 0.05 + (0.5 + 0.1 * 6) * 2.0 + 10.0)


def test_lte_tail_makes_two_small_transfers_cost_more_than_one(lib):
    lte = lib.link("lte")
    small = 80_000  # 10 KB
    one = transfer_cost(lte, 2 * small, direction="up")
    two = transfer_cost(lte, small, direction="up")
    assert 2 * two.energy_j > one.energy_j
    assert 2 * two.time_s > one.time_s
    # the tail dominates small payloads on cellular: ~10 J each
    assert two.energy_j > 10.0


def test_duty_cycle_stretches_time_not_energy(make_link):
    free = make_link(duty_cycle=1.0, promotion_s=0, tail_s=0, rtt_s=0)
    lora = make_link(duty_cycle=0.01, promotion_s=0, tail_s=0, rtt_s=0)
    a = transfer_cost(free, 6_000_000, direction="up")
    b = transfer_cost(lora, 6_000_000, direction="up")
    assert b.time_s == pytest.approx(100 * a.time_s)
    assert b.energy_j == pytest.approx(a.energy_j)


def test_zero_payload_is_free_and_bad_inputs_raise(make_link):
    link = make_link()
    assert transfer_cost(link, 0, direction="up").energy_j == 0.0
    with pytest.raises(ValueError):
        transfer_cost(link, -1, direction="up")
    with pytest.raises(ValueError):
        transfer_cost(link, 10, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        transfer_cost(link, 10, direction="up", bandwidth_factor=0.0)


def test_promotion_and_tail_can_be_skipped(make_link):
    link = make_link()
    warm = transfer_cost(
        link, 6_000_000, direction="up", include_promotion=False, include_tail=False
    )
    assert warm.time_s == pytest.approx(0.05 + 1.0)
    assert warm.energy_j == pytest.approx(0.05 + 4.0)


def test_batch_agrees(lib):
    links = [lib.link(n) for n in lib.links()] * 2
    bits = np.arange(1, len(links) + 1) * 1_000_003
    factors = np.linspace(0.5, 2.0, len(links))
    t, e = transfer_cost_batch(links, bits, direction="down", bandwidth_factor=factors)
    for i, link in enumerate(links):
        c = transfer_cost(link, int(bits[i]), direction="down", bandwidth_factor=factors[i])
        assert (t[i], e[i]) == pytest.approx((c.time_s, c.energy_j))


def test_bandwidth_factor_sampling(make_link):
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    assert sample_bandwidth_factor(make_link(spread_sigma=0.0), rng) == 1.0
    assert rng.bit_generator.state == before  # no draw consumed
    assert np.all(sample_bandwidth_factors(make_link(spread_sigma=0.0), rng, 5) == 1.0)
    draws = sample_bandwidth_factors(make_link(spread_sigma=0.5), rng, 4001)
    assert np.median(draws) == pytest.approx(1.0, abs=0.05)
    assert np.std(np.log(draws)) == pytest.approx(0.5, abs=0.05)
    f = sample_bandwidth_factor(make_link(spread_sigma=0.5), rng)
    assert f > 0
