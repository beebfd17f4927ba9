"""Client partitions: coverage, disjointness, determinism and the Dirichlet's label skew."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.data import partition
from fedsim.data.partition import MAX_DIRICHLET_TRIES, _largest_remainder


def _labels(n_per_class: int = 200, classes: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(classes), n_per_class))


def _check_cover(parts: list[np.ndarray], n: int) -> None:
    for p in parts:
        assert p.dtype == np.int64
        assert np.all(np.diff(p) > 0)  # sorted, no duplicates
    allidx = np.concatenate(parts)
    assert len(allidx) == n
    assert np.array_equal(np.sort(allidx), np.arange(n))


def _label_hist(labels: np.ndarray, parts: list[np.ndarray], classes: int) -> np.ndarray:
    return np.stack([np.bincount(labels[p], minlength=classes) for p in parts])


@pytest.mark.parametrize("kind", ["dirichlet", "iid", "shards"])
def test_cover_disjoint_and_deterministic(kind: str) -> None:
    labels = _labels()
    a = partition(labels, 7, kind=kind, rng=np.random.default_rng(3), alpha=0.3)
    b = partition(labels, 7, kind=kind, rng=np.random.default_rng(3), alpha=0.3)
    c = partition(labels, 7, kind=kind, rng=np.random.default_rng(4), alpha=0.3)
    assert len(a) == 7
    _check_cover(a, len(labels))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    clients=st.integers(1, 12),
    classes=st.integers(1, 6),
    alpha=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_dirichlet_property(n: int, clients: int, classes: int, alpha: float, seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, classes, size=n)
    parts = partition(
        labels, clients, kind="dirichlet", rng=np.random.default_rng(seed), alpha=alpha
    )
    assert len(parts) == clients
    _check_cover(parts, n)


def test_dirichlet_follows_eq2_per_class() -> None:
    """Each class is split by its own draw, counts within one of p_n/sum p * N^(c)."""
    labels = _labels(n_per_class=101, classes=3)
    rng = np.random.default_rng(11)
    parts = partition(labels, 4, kind="dirichlet", rng=rng, alpha=0.7)
    # Replay the draws: per class, a permutation then a Dirichlet vector.
    replay = np.random.default_rng(11)
    hist = _label_hist(labels, parts, 3)
    for c in range(3):
        replay.permutation(101)
        p = replay.dirichlet(np.full(4, 0.7))
        exact = p / p.sum() * 101
        assert np.all(np.abs(hist[:, c] - exact) < 1.0)
        assert hist[:, c].sum() == 101


def test_largest_remainder_sums_exactly() -> None:
    counts = _largest_remainder(np.array([1.0, 1.0, 1.0]), 10)
    assert counts.tolist() == [4, 3, 3]
    assert _largest_remainder(np.array([0.0, 2.0]), 5).tolist() == [0, 5]


def test_large_alpha_is_near_iid_small_alpha_concentrates() -> None:
    labels = _labels(n_per_class=500)
    big = _label_hist(
        labels,
        partition(labels, 10, kind="dirichlet", rng=np.random.default_rng(0), alpha=1000.0),
        10,
    )
    small = _label_hist(
        labels,
        partition(labels, 10, kind="dirichlet", rng=np.random.default_rng(0), alpha=0.05),
        10,
    )
    # Near-iid: every client holds ~50 of each class.
    assert np.all(np.abs(big - 50) <= 12)

    def top2_share(h: np.ndarray) -> float:
        sizes = h.sum(axis=1)
        keep = sizes > 0
        return float(np.mean(np.sort(h[keep], axis=1)[:, -2:].sum(axis=1) / sizes[keep]))

    assert top2_share(big) < 0.3
    assert top2_share(small) > 0.8


def test_min_share_redraws_and_fails_clearly() -> None:
    labels = _labels(n_per_class=100)
    parts = partition(
        labels, 10, kind="dirichlet", rng=np.random.default_rng(0), alpha=0.1, min_share=0.1
    )
    assert min(len(p) for p in parts) >= 0.1 * len(labels) / 10
    _check_cover(parts, len(labels))
    with pytest.raises(ValueError, match=f"after {MAX_DIRICHLET_TRIES} draws"):
        partition(
            labels, 10, kind="dirichlet", rng=np.random.default_rng(0), alpha=0.5, min_share=1.0
        )


def test_iid_equal_sizes() -> None:
    parts = partition(_labels(), 7, kind="iid", rng=np.random.default_rng(0))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shards_give_few_labels() -> None:
    labels = _labels(n_per_class=100)
    parts = partition(labels, 10, kind="shards", rng=np.random.default_rng(1), shards_per_client=2)
    _check_cover(parts, len(labels))
    hist = _label_hist(labels, parts, 10)
    assert np.all((hist > 0).sum(axis=1) <= 2)
    assert all(len(p) == 100 for p in parts)


def test_bad_arguments() -> None:
    labels = _labels(n_per_class=5)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown partition kind"):
        partition(labels, 2, kind="nope", rng=rng)
    with pytest.raises(ValueError, match="alpha"):
        partition(labels, 2, kind="dirichlet", rng=rng, alpha=0.0)
    with pytest.raises(ValueError, match="n_clients"):
        partition(labels, 0, kind="iid", rng=rng)
    with pytest.raises(ValueError, match="shards"):
        partition(labels, 30, kind="shards", rng=rng, shards_per_client=2)
    with pytest.raises(ValueError, match="1-D"):
        partition(labels.reshape(5, -1), 2, kind="iid", rng=rng)
