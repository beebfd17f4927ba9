"""Split a training set's indices among clients.

Three kinds:

* ``dirichlet`` — the FedMPQ supplementary's eq. 1-2: for every class ``c`` a proportion vector
  ``p^(c) ~ Dir_N(alpha)`` is drawn and client ``n`` receives
  ``N_n^(c) = p_n^(c) / sum_k p_k^(c) * N^(c)`` samples of class ``c`` (the class's samples
  shuffled first). Eq. 2 gives fractional counts; they are rounded by the largest-remainder
  method so that every sample is assigned exactly once and no count is off by more than one.
  ``min_share`` reproduces the reference code's re-draw until every client holds at least
  ``min_share * N / n`` samples (docs/algorithm.md section 1), with a bounded number of tries.
* ``iid`` — a shuffled, equal (up to one sample) split.
* ``shards`` — McMahan et al.'s pathological split: sort by label, cut into
  ``n * shards_per_client`` shards, deal ``shards_per_client`` random shards to each client.

Every result is a list of sorted int64 index arrays, pairwise disjoint and covering all
samples; the same ``rng`` state gives the same split.
"""

from __future__ import annotations

import numpy as np

PARTITION_KINDS: tuple[str, ...] = ("dirichlet", "iid", "shards")

#: Re-draws allowed before ``min_share`` gives up.
MAX_DIRICHLET_TRIES = 1000


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to ``weights`` that sum exactly to ``total``.

    Floors ``weights / sum * total`` and hands the leftover units to the largest fractional
    parts (ties to the lower index, so the result is deterministic).
    """
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    left = total - int(counts.sum())
    if left > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:left]] += 1
    return counts


def _dirichlet_once(
    labels: np.ndarray, n_clients: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        p = rng.dirichlet(np.full(n_clients, alpha))
        if not np.all(np.isfinite(p)) or p.sum() <= 0:
            # Extremely small alpha can underflow every component; fall back to one client.
            p = np.zeros(n_clients)
            p[rng.integers(n_clients)] = 1.0
        counts = _largest_remainder(p, len(idx))
        for n, chunk in enumerate(np.split(idx, np.cumsum(counts)[:-1])):
            parts[n].append(chunk)
    return [
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.empty(0, np.int64) for p in parts
    ]


def partition(
    labels: np.ndarray,
    n_clients: int,
    *,
    kind: str,
    rng: np.random.Generator,
    alpha: float = 0.5,
    shards_per_client: int = 2,
    min_share: float | None = None,
) -> list[np.ndarray]:
    """Indices of each client's samples.

    Args:
        labels: 1-D integer labels of the training set.
        n_clients: number of clients (>= 1).
        kind: one of :data:`PARTITION_KINDS`.
        rng: the only source of randomness (determinism: same state, same split).
        alpha: Dirichlet concentration (> 0); smaller is more heterogeneous.
        shards_per_client: shards dealt to each client (``shards``).
        min_share: ``dirichlet`` only: re-draw until every client holds at least
            ``min_share * len(labels) / n_clients`` samples (the reference code uses 0.1).

    Raises:
        ValueError: bad arguments, or ``min_share`` not met after
            :data:`MAX_DIRICHLET_TRIES` draws.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if isinstance(n_clients, bool) or int(n_clients) != n_clients or n_clients < 1:
        raise ValueError(f"n_clients must be a positive integer, got {n_clients!r}")
    n_clients = int(n_clients)
    total = int(labels.size)

    if kind == "iid":
        perm = rng.permutation(total)
        return [np.sort(p).astype(np.int64) for p in np.array_split(perm, n_clients)]

    if kind == "shards":
        return _shards(labels, n_clients, shards_per_client, rng)

    if kind == "dirichlet":
        return _dirichlet(labels, n_clients, alpha, min_share, rng)

    raise ValueError(f"unknown partition kind {kind!r}; known kinds: {', '.join(PARTITION_KINDS)}")


def _shards(
    labels: np.ndarray, n_clients: int, shards_per_client: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """McMahan et al.'s split: label-sorted shards, ``shards_per_client`` dealt to each client.

    A stable sort keeps equal labels in index order, so the shards (and the split) depend on
    ``rng`` alone.
    """
    total = int(labels.size)
    if shards_per_client < 1:
        raise ValueError(f"shards_per_client must be >= 1, got {shards_per_client}")
    n_shards = n_clients * shards_per_client
    if n_shards > total:
        raise ValueError(
            f"{n_shards} shards ({n_clients} clients x {shards_per_client}) "
            f"but only {total} samples"
        )
    shards = np.array_split(np.argsort(labels, kind="stable"), n_shards)
    deal = rng.permutation(n_shards)
    return [
        np.sort(
            np.concatenate(
                [shards[s] for s in deal[i * shards_per_client : (i + 1) * shards_per_client]]
            )
        ).astype(np.int64)
        for i in range(n_clients)
    ]


def _dirichlet(
    labels: np.ndarray,
    n_clients: int,
    alpha: float,
    min_share: float | None,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Eq. 1-2 once, or (``min_share``) re-drawn as the reference code does until every
    client holds at least ``min_share * N / n`` samples, so tiny clients do not stall rounds.
    """
    total = int(labels.size)
    if not alpha > 0 or not np.isfinite(alpha):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if min_share is None:
        return _dirichlet_once(labels, n_clients, float(alpha), rng)
    if not 0 <= min_share <= 1:
        raise ValueError(f"min_share must lie in [0, 1], got {min_share!r}")
    need = min_share * total / n_clients
    smallest = 0
    for _ in range(MAX_DIRICHLET_TRIES):
        parts = _dirichlet_once(labels, n_clients, float(alpha), rng)
        smallest = min(len(p) for p in parts)
        if smallest >= need:
            return parts
    raise ValueError(
        f"dirichlet partition: after {MAX_DIRICHLET_TRIES} draws some client still held "
        f"fewer than min_share * N / n = {need:.1f} samples (last smallest: {smallest}); "
        f"lower min_share or raise alpha (alpha={alpha}, n_clients={n_clients}, N={total})"
    )
