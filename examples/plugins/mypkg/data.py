"""A dataset plug-in: ``load(*, root, seed, options) -> (train, test)`` of ArrayDataset.

Gaussian blobs on 1x6x6 "images", one mean pattern per class: learnable in a few rounds.
``root`` is unused (a real loader would read its files from there; fedsim never downloads).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedsim.data import ArrayDataset

CLASSES = 4


def load_blobs(*, root: str | None, seed: int, options: dict[str, Any]) -> tuple[
        ArrayDataset, ArrayDataset]:
    n_train = int(options.get("train_subset") or 400)
    n_test = int(options.get("test_subset") or 100)
    g = np.random.default_rng(12345)  # the dataset is fixed; ``seed`` could vary it
    means = g.normal(0, 1, size=(CLASSES, 1, 6, 6)).astype(np.float32)

    def part(n: int, offset: int) -> ArrayDataset:
        r = np.random.default_rng(offset)
        y = r.integers(0, CLASSES, size=n).astype(np.int64)
        x = (means[y] + 0.5 * r.normal(size=(n, 1, 6, 6))).astype(np.float32)
        return ArrayDataset(x=x, y=y, num_classes=CLASSES, name=f"blobs:{offset}")

    return part(n_train, 1), part(n_test, 2)
