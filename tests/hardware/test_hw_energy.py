"""Energy by phase: compute, uplink, downlink and idle add up."""

from __future__ import annotations

import pytest

from fedsim.hardware import (
    battery_j,
    idle_energy_j,
    round_cost,
    train_cost,
    transfer_cost,
)
from fedsim.payload import model_payload_bits


def test_phases_add_up(spec, make_device):
    p = make_device()
    link = p.resolved_link
    rc = round_cost(p, spec, [4, 4], [3, 2], act_bits=4, batch_size=8, steps=5, round_s=100.0)
    comp = train_cost(p, spec, [4, 4], act_bits=4, batch_size=8, steps=5)
    down = transfer_cost(link, model_payload_bits(spec, [4, 4]), direction="down")
    up = transfer_cost(link, model_payload_bits(spec, [3, 2]), direction="up")
    assert rc.compute_j == pytest.approx(comp.energy_j)
    assert rc.downlink_j == pytest.approx(down.energy_j)
    assert rc.uplink_j == pytest.approx(up.energy_j)
    assert rc.idle_s == pytest.approx(100.0 - comp.time_s)
    assert rc.idle_j == pytest.approx(0.5 * (100.0 - comp.time_s))
    assert rc.energy_j == pytest.approx(sum(rc.energy_by_phase().values()))
    assert rc.energy_j == pytest.approx(
        comp.energy_j + down.energy_j + up.energy_j + idle_energy_j(p, 100.0 - comp.time_s)
    )
    assert rc.busy_s == pytest.approx(down.time_s + comp.time_s + up.time_s)


def test_without_round_length_idle_covers_the_transfers(spec, make_device):
    p = make_device()
    rc = round_cost(p, spec, [8, 8], [8, 8], act_bits=None, batch_size=4, steps=1)
    assert rc.idle_s == pytest.approx(rc.downlink_s + rc.uplink_s)


def test_idle_and_battery(make_device):
    p = make_device()
    assert idle_energy_j(p, 10.0) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        idle_energy_j(p, -1.0)
    assert battery_j(p) == pytest.approx(3600.0)
    mains = p.model_copy(update={"battery": None})
    assert battery_j(mains) == float("inf")
