"""Precision reduction after local training (docs/algorithm.md section 5).

Density of plane i: ``d = nnz(B[i]) / P_l`` (a fraction here: ``epsilon=0.02`` is the doc's
2 %). Per layer, never below 1 bit:

* MSB side, from the top, stopping at the first dense plane: ``d == 0`` drops the plane;
  ``0 < d < epsilon`` ORs it into every lower plane (saturation: those weights become the
  largest value the remaining planes hold) and drops it. How, is ``merge``:

  - ``"code"`` (default, the authors' code): every density is counted once, before any OR,
    and the kept planes are rebuilt from that snapshot at each step, so only the *last*
    plane dropped counts: if it was sparse its bits are ORed in, if it was empty no OR
    survives at all (a sparse plane above an empty one loses its bits);
  - ``"cumulative"``: each sparse plane is ORed in as it goes and the next plane's density
    is counted after the OR it received, so no set bit is lost.

  The two differ only when two adjacent top planes are both sparse or empty.
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

MERGES = ("code", "cumulative")


def _reduce_planes(planes: torch.Tensor, n: int, epsilon: float,
                   saturate: bool, merge: str = "code", *,
                   cap_at_one_bit: bool = False) -> tuple[int, int, int]:
    """The reduction rule on one plane tensor ``[b, ...]`` (ORs in place); returns the kept
    plane range ``lo..hi-1`` and the number of LSB planes dropped.

    ``merge="code"`` also copies where the code caps the ORed digits at 1: for weights it
    does so unless that merge left a single plane (its loop breaks first, so a digit of 2
    survives), for biases always (``cap_at_one_bit``).
    """
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
    b_old = planes.shape[0]
    flat = planes.view(b_old, -1)
    # One sync for all plane counts; saturation recounts only the plane that received an OR.
    nnz = flat.count_nonzero(dim=1).tolist()
    lo, hi = 0, b_old
    last_sparse: int | None = None  # merge "code": the last top plane dropped, if sparse
    while hi - lo > 1:
        top = hi - 1
        if nnz[top] == 0:
            hi -= 1
            last_sparse = None
        elif saturate and nnz[top] / n < epsilon:
            hi -= 1
            if merge == "code":
                last_sparse = top
                continue
            below = flat[lo:top]
            # OR of 0/1 planes, written as the code does (add, then cap at 1) so that the
            # reference rule's non-binary planes (a top digit of 2 or -1) reduce as there.
            below.add_(flat[top]).clamp_(max=1.0)
            nnz[lo:top] = flat[lo:top].count_nonzero(dim=1).tolist()
        else:
            break
    if last_sparse is not None:  # the code's snapshot: only the last plane dropped is ORed
        merged = flat[lo:hi].add_(flat[last_sparse])
        if hi - lo > 1 or cap_at_one_bit:
            merged.clamp_(max=1.0)
        nnz[lo:hi] = flat[lo:hi].count_nonzero(dim=1).tolist()
    doublings = 0
    while hi - lo > 1 and nnz[lo] / n <= epsilon:
        lo += 1
        doublings += 1
    return lo, hi, doublings


@torch.no_grad()
def reduce_layer_(layer: BitPlaneLayer, epsilon: float = 0.02, *, saturate: bool = True,
                  merge: str = "code") -> int:
    """Reduce one layer in place; returns its new bit-width.

    A bias held as bit planes is reduced by the same rule on its own planes (as the code
    does); its bit-width is not part of the bit vector.
    """
    _check_epsilon(epsilon)
    b_old = layer.bits
    lo, hi, doublings = _reduce_planes(layer.planes.data, layer.weight_numel, epsilon, saturate,
                                       merge)
    layer.keep_planes_(lo, hi)
    _rescale_(layer.scale, doublings, hi - lo, b_old)
    if layer.bias_planes is not None and layer.bias_bits > 1:
        bp = layer.bias_planes.data
        bb_old = bp.shape[0]
        blo, bhi, bdoublings = _reduce_planes(bp, bp.shape[1], epsilon, saturate, merge,
                                              cap_at_one_bit=True)
        layer.keep_bias_planes_(blo, bhi)
        assert layer.bias_scale is not None
        _rescale_(layer.bias_scale, bdoublings, bhi - blo, bb_old)
    return hi - lo


@torch.no_grad()
def _rescale_(scale: torch.Tensor, doublings: int, b_new: int, b_old: int) -> None:
    """``s <- (s 2^d) (2^b_new - 1) / (2^b_old - 1)``, always and in that order, as the code
    computes it: even when nothing was dropped, ``(s L) / L`` can move ``s`` by one float
    ulp, and one ulp of a scale is enough to part two 4-bit runs (docs/fidelity.md)."""
    if doublings:
        scale.data.mul_(float(2**doublings))
    scale.data.mul_(float(levels(b_new))).div_(float(levels(b_old)))


def reduce_precision(
    qmodel: nn.Module, epsilon: float = 0.02, *, saturate: bool = True, merge: str = "code"
) -> tuple[list[int], list[int]]:
    """Reduce every bit-plane layer in place (docs/algorithm.md section 5).

    Returns ``(new_bits, reductions)`` over the bit vector (``reductions[l] = b_old - b_new``;
    a layer kept float reports 32 and 0). ``new_bits`` never exceeds the bits before.
    """
    _check_epsilon(epsilon)
    new_bits: list[int] = []
    reductions: list[int] = []
    for _, m in bit_layers(qmodel):
        if isinstance(m, BitPlaneLayer):
            before = m.bits
            after = reduce_layer_(m, epsilon, saturate=saturate, merge=merge)
            new_bits.append(after)
            reductions.append(before - after)
        else:
            new_bits.append(FLOAT_BITS)
            reductions.append(0)
    return new_bits, reductions


def _check_epsilon(epsilon: float) -> None:
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"density threshold epsilon must be a fraction in [0, 1], got {epsilon}")
