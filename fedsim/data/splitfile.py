"""Client splits read from / written to a JSON file, to reproduce another codebase's split.

Format::

    {"train_indices_per_client": [[3, 17, ...], [0, 5, ...], ...],   # one list per client
     "test_indices": [0, 1, ...],                                    # optional
     "class_counts_per_client": [[12, 0, ...], ...],                 # optional, checked
     "spec": "how it was drawn", ...}                                # other keys: metadata

Other codebases' split files carry metadata beside the indices (a ``spec`` text, per-client
class counts, the dataset's name): every key besides the indices is accepted and ignored,
except ``class_counts_per_client``, which is checked against the labels when present (a
split meant for another dataset or subset is refused instead of silently training on it).

Indices refer to the dataset's *official* order (Fashion-MNIST idx order, CIFAR batch order,
scikit-learn's digits order) after ``train_subset``/``test_subset`` if those are set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import InputError


def read_split(path: Path, *, n_clients: int, n_train: int, n_test: int,
               file: str, key: str, labels: np.ndarray | None = None,
               num_classes: int | None = None) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Load and check a split file; every problem is an InputError naming the file.

    With ``labels`` (the training labels) a ``class_counts_per_client`` entry is checked.
    """
    if not path.is_file():
        raise InputError(f"split file not found: {path}", file=file, key=key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=path) from None
    if not isinstance(data, dict) or "train_indices_per_client" not in data:
        raise InputError("expected an object with 'train_indices_per_client'", file=path)
    lists = data["train_indices_per_client"]
    if not isinstance(lists, list):
        raise InputError("expected a list of lists", file=path, key="train_indices_per_client")
    if len(lists) != n_clients:
        raise InputError(f"{len(lists)} client lists, but the fleet has {n_clients} clients",
                         file=path, key="train_indices_per_client")
    parts = [_indices(v, n_train, path, f"train_indices_per_client[{i}]")
             for i, v in enumerate(lists)]
    allidx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if len(np.unique(allidx)) != len(allidx):
        vals, counts = np.unique(allidx, return_counts=True)
        dup = int(vals[counts > 1][0])
        owners = [i for i, p in enumerate(parts) if dup in set(p.tolist())]
        raise InputError(f"training index {dup} is given more than once (clients {owners})",
                         file=path, key="train_indices_per_client")
    if labels is not None and data.get("class_counts_per_client") is not None:
        _check_class_counts(data["class_counts_per_client"], parts, labels,
                            num_classes or int(labels.max(initial=0)) + 1, path)
    test = None
    if data.get("test_indices") is not None:
        test = _indices(data["test_indices"], n_test, path, "test_indices")
        if len(np.unique(test)) != len(test):
            raise InputError("duplicated test index", file=path, key="test_indices")
    return parts, test


def _check_class_counts(value: Any, parts: Sequence[np.ndarray], labels: np.ndarray,
                        num_classes: int, path: Path) -> None:
    key = "class_counts_per_client"
    if not isinstance(value, list) or len(value) != len(parts):
        raise InputError(f"expected one list of counts per client ({len(parts)})",
                         file=path, key=key)
    for i, (counts, idx) in enumerate(zip(value, parts, strict=True)):
        if not isinstance(counts, list) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in counts):
            raise InputError("expected a list of integers", file=path, key=f"{key}[{i}]")
        have = np.bincount(labels[idx], minlength=max(num_classes, len(counts))).tolist()
        want = list(counts) + [0] * (len(have) - len(counts))
        if have != want:
            raise InputError(
                f"client {i}'s labels do not match the file's class counts (file {counts}, "
                f"dataset {have[:len(counts)]}): was the split made for another dataset or "
                "subset?", file=path, key=f"{key}[{i}]")


def _indices(value: Any, n: int, path: Path, key: str) -> np.ndarray:
    if not isinstance(value, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise InputError("expected a list of integers", file=path, key=key)
    arr = np.asarray(value, dtype=np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if len(bad):
        raise InputError(f"index {int(bad[0])} out of range 0..{n - 1}", file=path, key=key)
    return arr


def split_document(parts: Sequence[np.ndarray], test: np.ndarray | None,
                   dataset: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "train_indices_per_client": [[int(i) for i in p] for p in parts],
        "test_indices": None if test is None else [int(i) for i in test],
    }
