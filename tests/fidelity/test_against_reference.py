"""Single-client differential against the authors' code (docs/fidelity.md).

Runs ``benchmarks/fidelity/fedmpq_vs_reference.py --single-client`` for a 2-, 4-, 6- and
8-bit client: from the same start, batches and random stream, every step must leave every
plane, sign, scale, BatchNorm tensor and the logits *bit-equal* to the code's. It needs a
checkout of the authors' code (CityChan/Federated-Mixed-Precision-Quantization, f4e99985):
set ``FEDSIM_REFERENCE_CODE`` to its folder. Without it (CI has none: nothing is downloaded
at test time) the test is skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE = os.environ.get("FEDSIM_REFERENCE_CODE")
HAVE_DATA = Path("/usr/share/datasets/fashion-mnist").exists()


@pytest.mark.skipif(not CODE, reason="set FEDSIM_REFERENCE_CODE to a checkout of the "
                    "authors' FedMPQ code to run the differential")
@pytest.mark.skipif(not HAVE_DATA, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("client", [0, 2, 5, 8])  # budgets 2, 4, 6, 8
def test_one_client_is_bit_identical_to_the_code(client: int) -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "fidelity" / "fedmpq_vs_reference.py"),
         "--reference", str(CODE), "--single-client", str(client), "--steps", "4"],
        capture_output=True, text=True, check=False, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("logits equal") == 4  # the smallest client has 4 batches
