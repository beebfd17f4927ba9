"""Named random streams derived from the run seed.

Every random draw in fedsim comes from a stream keyed by (run seed, purpose, round, client):
adding a process or a client never shifts another stream's draws (the SimPy-examples trap of
one global stream). Torch-free; torch generators are seeded from :func:`derive_seed`.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *names: str | int) -> int:
    """A 63-bit seed determined by the run seed and a tuple of names (stable across runs)."""
    text = "/".join([str(seed), *map(str, names)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def rng(seed: int, *names: str | int) -> np.random.Generator:
    """A numpy Generator for one named purpose."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *names)))


# -- counter-based draws, vectorised over clients ----------------------------------------------
# Why: a Generator per (purpose, client) costs ~12 us to build, which is 25 s for the link
# draws of 10^6 clients. These draws hash (stream key, client id, counter) with SplitMix64
# instead: the same value whether one client or a million are drawn at once, so the per-client
# engine and the vectorised one see identical numbers, and no stream shifts another.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_COUNTER = np.uint64(0xD1B54A32D192ED03)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def keyed_uniforms(seed: int, names: tuple[str | int, ...], ids: np.ndarray | list[int],
                   counter: int = 0) -> np.ndarray:
    """Uniforms in [0, 1), one per id, for the stream ``(seed, *names)`` and ``counter``.

    Integer arithmetic only (SplitMix64's finaliser, then the top 53 bits): bit-identical on
    every platform and for any batch size.
    """
    key = np.uint64(derive_seed(seed, *names))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        offset = key + np.uint64(counter) * _COUNTER
    x = np.atleast_1d(np.asarray(ids, dtype=np.uint64)) * _GOLDEN
    x = x + offset
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def keyed_normals(seed: int, names: tuple[str | int, ...], ids: np.ndarray | list[int],
                  counter: int = 0) -> np.ndarray:
    """Standard normal deviates (Box-Muller on two keyed uniforms, counters 2c and 2c+1)."""
    u1 = keyed_uniforms(seed, names, ids, 2 * counter)
    u2 = keyed_uniforms(seed, names, ids, 2 * counter + 1)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
