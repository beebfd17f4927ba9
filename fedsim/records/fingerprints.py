"""Fingerprints of the files a run read (``run.json`` ``inputs``): size and SHA-256.

Files over 64 MiB are hashed by their first and last MiB with the size, which catches any
rewrite that changes the size or either end without reading gigabytes. Written when a run
starts (:mod:`fedsim.runner.inputs`), compared when it resumes, reported by verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FULL_HASH_LIMIT = 64 * 2**20
EDGE = 2**20


def fingerprint(path: Path) -> dict[str, Any]:
    """``{path, size, sha256, hashed}`` of one file (``hashed``: ``full`` or ``ends``)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
            how = "full"
        else:
            h.update(f.read(EDGE))
            f.seek(size - EDGE)
            h.update(f.read(EDGE))
            how = "ends"
    return {"path": str(path.resolve()), "size": size, "sha256": h.hexdigest(), "hashed": how}


def changed(recorded: Sequence[Mapping[str, Any]]) -> list[str]:
    """What differs now from the recorded fingerprints (empty: every file is unchanged)."""
    out = []
    for rec in recorded:
        p = Path(str(rec.get("path", "")))
        if not p.is_file():
            out.append(f"{p}: missing")
            continue
        now = fingerprint(p)
        if now["size"] != rec.get("size") or now["sha256"] != rec.get("sha256"):
            out.append(f"{p}: changed ({rec.get('size')} bytes then, {now['size']} now)")
    return out
