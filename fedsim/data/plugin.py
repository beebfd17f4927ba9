"""A user's dataset as a plug-in (fedsim/plugins.py): loaded, then checked at the door."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fedsim.data.datasets import ArrayDataset
from fedsim.errors import InputError


def load_plugin(name: str, *, root: str | None, seed: int,
                 options: Mapping[str, Any] | None) -> tuple[ArrayDataset, ArrayDataset]:
    """A user's dataset (``module:function`` or an installed ``fedsim.datasets`` entry
    point): ``load(root=, seed=, options=) -> (train, test)``, checked at the door."""
    from fedsim.plugins import PluginError, check_callable

    try:
        load = check_callable("dataset", name)
    except PluginError as exc:
        raise InputError(f"dataset plug-in {exc}", key="data.dataset") from None
    try:
        out = load(root=root, seed=seed, options=dict(options or {}))
    except (TypeError, ValueError, OSError) as exc:
        raise InputError(f"dataset plug-in {name} failed: {type(exc).__name__}: {exc}",
                         key="data.dataset") from None
    if not (isinstance(out, tuple) and len(out) == 2
            and all(isinstance(d, ArrayDataset) for d in out)):
        raise InputError(f"dataset plug-in {name} must return (train, test) as two "
                         "fedsim.data.ArrayDataset", key="data.dataset")
    for part, d in zip(("train", "test"), out, strict=True):
        if d.x.ndim != 4 or d.x.dtype != np.float32 or d.y.dtype != np.int64 \
                or len(d.x) != len(d.y) or len(d.y) == 0:
            raise InputError(f"dataset plug-in {name}: {part} needs float32 images (N, C, H, W) "
                             "and as many int64 labels (N >= 1)", key="data.dataset")
        if d.y.min() < 0 or d.y.max() >= d.num_classes:
            raise InputError(f"dataset plug-in {name}: {part} labels must lie in "
                             f"0..{d.num_classes - 1}", key="data.dataset")
    return out
