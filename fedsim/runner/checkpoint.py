"""Atomic, safe checkpoints of a run's state after every round.

One file, ``checkpoint.pt``, written to a temporary name, fsynced and renamed over the old
one, so a process killed at any instant (SIGKILL included) leaves either the previous or the
new checkpoint, never a torn one. It holds only tensors and plain Python values, loaded with
``torch.load(weights_only=True)``: no arbitrary object is ever unpickled.

Everything random in fedsim is derived from (run seed, purpose, round, client), so a
checkpoint needs no RNG state: the global model, the algorithm's server state, the engine's
clock/energy/batteries/selection statistics and the byte offsets of the record files are
enough to continue a run byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint.pt"
FORMAT = 1


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> int:
    """Write ``payload`` atomically into ``folder/checkpoint.pt``; returns its size in bytes."""
    import torch

    tmp = folder / f".{CHECKPOINT}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:  # a full disk, a kill: the previous checkpoint stays as it was
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, folder / CHECKPOINT)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return (folder / CHECKPOINT).stat().st_size


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last complete checkpoint, or None if the run never finished a round."""
    import torch

    path = folder / CHECKPOINT
    if not path.exists():
        return None
    data = torch.load(path, weights_only=True, map_location="cpu")
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported checkpoint format {data.get('format')}")
    return data
