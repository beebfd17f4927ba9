"""Precision reduction after local training (FEDMPQ.md section 5).

Density of plane i: ``d = nnz(B[i]) / P_l`` (a fraction here: ``epsilon=0.02`` is the doc's
2 %). Per layer, never below 1 bit:

* MSB side, from the top, stopping at the first dense plane: ``d == 0`` drops the plane;
  ``0 < d < epsilon`` ORs it into every lower plane (saturation: those weights become the
  largest value the remaining planes hold) and drops it. The OR is cumulative (**Decision**:
  unlike the code's snapshot, no set bit is lost), so the next plane's density is counted
  after the OR it received.
* LSB side, from the bottom: ``d <= epsilon`` drops the plane and doubles ``s`` (one LSB of the
  new grid is two of the old; the dropped bits are truncated, as in the code).
* Finally ``s <- s (2^b_new - 1) / (2^b_old - 1)``, so dropping all-zero planes leaves the
  de-quantized weight unchanged.

With ``saturate=False`` sparse MSB planes are kept (only empty ones are dropped). With
``epsilon=0`` only empty planes go on either side (the reference's reduction at init).
"""

from __future__ import annotations

import torch
from torch import nn

from fedsim.quant.convert import bit_layers
from fedsim.quant.layers import BitPlaneLayer
from fedsim.quant.representation import FLOAT_BITS, levels


@torch.no_grad()
def reduce_layer_(layer: BitPlaneLayer, epsilon: float = 0.02, *, saturate: bool = True) -> int:
    """Reduce one layer in place; returns its new bit-width."""
    _check_epsilon(epsilon)
    planes = layer.planes.data
    b_old = layer.bits
    n = layer.weight_numel
    flat = planes.view(b_old, -1)
    # One sync for all plane counts; saturation recounts only the plane that received an OR.
    nnz = flat.count_nonzero(dim=1).tolist()
    lo, hi = 0, b_old
    while hi - lo > 1:
        top = hi - 1
        if nnz[top] == 0:
            hi -= 1
        elif saturate and nnz[top] / n < epsilon:
            below = flat[lo:top]
            below.clamp_(min=flat[top])  # OR of 0/1 planes: max(B[i], B[top])
            hi -= 1
            nnz[lo:top] = flat[lo:top].count_nonzero(dim=1).tolist()
        else:
            break
    doublings = 0
    while hi - lo > 1 and nnz[lo] / n <= epsilon:
        lo += 1
        doublings += 1
    b_new = hi - lo
    factor = float(2**doublings) * levels(b_new) / levels(b_old)
    layer.keep_planes_(lo, hi, factor)
    return b_new


def reduce_precision(
    qmodel: nn.Module, epsilon: float = 0.02, *, saturate: bool = True
) -> tuple[list[int], list[int]]:
    """Reduce every bit-plane layer in place (FEDMPQ.md section 5).

    Returns ``(new_bits, reductions)`` over the bit vector (``reductions[l] = b_old - b_new``;
    a layer kept float reports 32 and 0). ``new_bits`` never exceeds the bits before.
    """
    _check_epsilon(epsilon)
    new_bits: list[int] = []
    reductions: list[int] = []
    for _, m in bit_layers(qmodel):
        if isinstance(m, BitPlaneLayer):
            before = m.bits
            after = reduce_layer_(m, epsilon, saturate=saturate)
            new_bits.append(after)
            reductions.append(before - after)
        else:
            new_bits.append(FLOAT_BITS)
            reductions.append(0)
    return new_bits, reductions


def _check_epsilon(epsilon: float) -> None:
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"density threshold epsilon must be a fraction in [0, 1], got {epsilon}")
