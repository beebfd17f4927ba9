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
