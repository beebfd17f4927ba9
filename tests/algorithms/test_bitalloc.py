"""FedMPQ bit allocation on hand examples and properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.algorithms.bitalloc import bit_statistics, client_weights, layer_priority, prune_grow


def test_bit_statistics_hand_example() -> None:
    omega = client_weights([100, 100], [2, 6])  # -> [0.25, 0.75]
    assert np.allclose(omega, [0.25, 0.75])
    b_bar, d_bar = bit_statistics([[2, 8, 4], [6, 8, 2]], [[6, 0, 4], [2, 0, 6]], omega)
    # b: 0.25*2+0.75*6=5, 8, 0.25*4+0.75*2=2.5 -> round half to even = 2
    assert b_bar.tolist() == [5, 8, 2]
    # D: 0.25*6+0.75*2+1=4, 1, 0.25*4+0.75*6+1=6.5 -> 6
    assert d_bar.tolist() == [4, 1, 6]


def test_prune_then_grow_hand_example() -> None:
    w = [0.1, 0.6, 0.3]
    pri = layer_priority(w, np.array([1, 3, 2]))  # [0.1, 1.8, 0.6]: layer 1 pruned first
    bits = prune_grow([8, 8, 8], pri, w, budget=4.0)
    # prune layer 1 from 8 down to 2 (avg 8-3.6=4.4), then to 1 (avg 3.8); then grow from
    # lowest priority: layer 0 +1 -> 3.9 ... layer 0 already 8, so layer 2 can't (+0.3 > 4)
    assert bits == [8, 1, 8]
    assert np.dot(w, bits) <= 4.0 + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 12),
    data=st.data(),
    budget=st.floats(1.0, 8.0),
)
def test_never_exceeds_budget_and_fills_it(n: int, data: st.DataObject, budget: float) -> None:
    params = data.draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n))
    w = np.asarray(params, dtype=float) / sum(params)
    b_bar = data.draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    pri = data.draw(st.lists(st.floats(0, 10), min_size=n, max_size=n))
    bits = prune_grow(b_bar, pri, w, budget)
    avg = float(np.dot(w, bits))
    assert all(1 <= b <= 8 for b in bits)
    assert avg <= budget + 1e-9
    # filled to within one layer's share: no layer below 8 could still be grown
    slack = budget - avg
    assert all(b == 8 or w[i] > slack - 1e-9 for i, b in enumerate(bits))


# -- the reference code's rule (allocation: reference) ------------------------------------------
# ResNet-20 with a 1-channel stem (Fashion-MNIST) and 1x1 shortcuts: stem 144 weights, layer1
# 6 x 2304, layer2 4608 + 5 x 9216, layer3 18432 + 5 x 36864, FC 640 (bit layers in order).
RESNET20_1CH = [144] + [2304] * 6 + [4608] + [9216] * 5 + [18432] + [36864] * 5 + [640]


def _bits(s: str) -> list[int]:
    return [int(c) for c in s]


def _reference(avg: int, budget: float) -> str:
    from fedsim.algorithms.bitalloc import prune_grow_reference

    w = np.asarray(RESNET20_1CH, dtype=float) / sum(RESNET20_1CH)
    pri = layer_priority(w, np.ones(len(w), dtype=np.int64))  # priorities by layer size
    return "".join(map(str, prune_grow_reference([avg] * len(w), pri, w, budget)))


def test_reference_rule_worked_examples() -> None:
    """The examples of REFERENCE_RUN.md (read from the code and confirmed by its logs)."""
    assert _reference(8, 2) == "88888888211881111118"
    assert _reference(8, 4) == "88888888888888211168"
    assert _reference(8, 6) == "88888888888888217888"
    assert _reference(6, 2) == "88666666146661111118"


def test_reference_rule_ends_just_above_the_budget() -> None:
    w = np.asarray(RESNET20_1CH, dtype=float) / sum(RESNET20_1CH)
    avgs = [float(w @ _bits(_reference(8, b))) for b in (2, 4, 6)]
    assert [round(a, 3) for a in avgs] == [2.018, 4.012, 6.075]  # the code's logged averages
    strict = prune_grow([8] * len(w), layer_priority(w, np.ones(len(w))), w, 2.0)
    assert float(w @ strict) <= 2.0 + 1e-9 < avgs[0]


def test_reference_rule_ties_go_to_the_lowest_index() -> None:
    from fedsim.algorithms.bitalloc import prune_grow_reference

    w = [0.25, 0.25, 0.25, 0.25]
    assert prune_grow_reference([8, 8, 8, 8], [1, 1, 1, 1], w, 7.0) == [4, 8, 8, 8]
    assert prune_grow([8, 8, 8, 8], [1, 1, 1, 1], w, 7.0) == [4, 8, 8, 8]  # same with strict
    assert prune_grow_reference([1, 1, 1, 1], [1, 1, 1, 1], w, 2.0) == [5, 1, 1, 1]
