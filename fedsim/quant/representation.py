"""Bit-plane representation of one conv/linear weight (docs/algorithm.md section 2).

A layer at ``b`` bits (1..8) holds

* ``planes``: a float tensor of shape ``[b, *weight.shape]``, LSB first (``planes[0]`` is the
  least significant plane), every entry exactly 0.0 or 1.0 after each re-quantization;
* ``sign``: a float tensor of the weight's shape, every entry -1.0 or +1.0;
* ``scale``: a 0-dim float tensor ``s``;

and stands for ``W = s * sign * (sum_i 2^i planes[i]) / (2^b - 1)``.

Why float planes and not integers: the straight-through estimator gives the planes real-valued
gradients and the optimizer takes real-valued (power-of-two) steps on them before snapping them
back to clean binary; keeping them float avoids a cast on every forward and every step.

The math sits behind :class:`BitPlaneRepresentation`, a small protocol (unit value, encode,
decode, re-quantize) so that the offset-binary variant of the supplementary (zero point
``2^(b-1)``, no sign tensor) can be added as a second implementation; fedsim uses
:data:`SIGN_MAGNITUDE` (the reference code's choice, docs/algorithm.md section 2).

Everything is vectorised over the weights: the integer value is one reduction over the plane
axis (a ``[b] x [b, N]`` product), the split into planes is a handful of in-place elementwise
ops on the stacked tensor; the only Python loops run over at most 8 planes, never over weights.
"""

from __future__ import annotations

import operator
from typing import Protocol

import torch
from torch import Tensor

#: Largest bit-width of a bit-plane layer (docs/algorithm.md section 1: bit-widths lie in 1..8).
MAX_BITS = 8
#: Smallest bit-width of a bit-plane layer.
MIN_BITS = 1
#: Bit-width that marks a float layer in a bit vector (see :mod:`fedsim.spec`).
FLOAT_BITS = 32
#: Guards divisions by an all-zero layer's scale (its weights are 0 whatever the planes say).
SCALE_EPS = 1e-30


def check_bits(bits: object, *, allow_float: bool = False) -> int:
    """Return ``bits`` as an int, or raise ``ValueError`` if it is not a valid bit-width.

    Valid: 1..8, and 32 (a float layer) when ``allow_float``.
    """
    if isinstance(bits, bool):
        raise ValueError(f"bit-width must be an integer, got {bits!r}")
    try:
        value = operator.index(bits)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"bit-width must be an integer, got {bits!r}") from None
    if allow_float and value == FLOAT_BITS:
        return value
    if not MIN_BITS <= value <= MAX_BITS:
        extra = f" or {FLOAT_BITS} (float layer)" if allow_float else ""
        raise ValueError(f"bit-width must be in {MIN_BITS}..{MAX_BITS}{extra}, got {value}")
    return value


def levels(bits: int) -> int:
    """Largest integer magnitude at ``bits`` bits: ``2^b - 1``."""
    return (1 << bits) - 1


def place_values(
    bits: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``[1, 2, 4, ..., 2^(b-1)]``: the place value of each plane, LSB first."""
    return torch.exp2(torch.arange(bits, device=device, dtype=dtype))


def _plane_view(place: Tensor, ndim: int) -> Tensor:
    """``place`` shaped ``[b, 1, 1, ...]`` to broadcast against a ``[b, *shape]`` tensor."""
    return place.view(-1, *([1] * (ndim - 1)))


def integer_value(
    planes: Tensor, place: Tensor | None = None, *, out: Tensor | None = None
) -> Tensor:
    """``sum_i 2^i planes[i]`` with one reduction over the plane axis; weight-shaped.

    ``out`` (weight-shaped, contiguous) receives the result without a new allocation.
    """
    b = planes.shape[0]
    if place is None:
        place = place_values(b, device=planes.device, dtype=planes.dtype)
    flat_t = planes.reshape(b, -1).t()  # [N, b] view: one matrix-vector product
    if out is None:
        return torch.mv(flat_t, place).view(planes.shape[1:])
    torch.mv(flat_t, place, out=out.view(-1))
    return out


def split_planes_(q: Tensor, planes: Tensor, place: Tensor | None = None) -> Tensor:
    """Write the binary digits of the integer magnitudes ``q`` (0..2^b-1) into ``planes``.

    In place and exact in float32: ``planes[i] = floor(q / 2^i) mod 2``.
    """
    b = planes.shape[0]
    if place is None:
        place = place_values(b, device=planes.device, dtype=planes.dtype)
    planes.copy_(q.unsqueeze(0).expand_as(planes))
    planes.div_(_plane_view(place, planes.dim())).floor_().remainder_(2.0)
    return planes


def unit_value(planes: Tensor, sign: Tensor, place: Tensor | None = None) -> Tensor:
    """``round(clip(sign * sum_i 2^i B[i], -L, L)) / L`` with ``L = 2^b - 1`` (a new tensor).

    The forward value of a layer divided by its scale (docs/algorithm.md section 2: ``v`` clipped to
    [-1, 1] and rounded to the grid). On clean planes the clip and the rounding change nothing;
    they matter only for real-valued planes. The integer sum is exact in float32, so the
    forward pass and :func:`dequantize` give bit-identical weights.
    """
    lv = levels(planes.shape[0])
    q = integer_value(planes, place)
    return q.mul_(sign).clamp_(-lv, lv).round_().div_(lv)


class BitPlaneRepresentation(Protocol):
    """How a weight tensor maps to (planes, sign, scale) and back.

    Implementations must keep ``planes`` exactly 0/1 after :meth:`encode_` and
    :meth:`requantize_`; the forward weight is ``unit(planes, sign) * scale`` and
    :meth:`decode` must return exactly that. The straight-through backward assumes
    ``d unit / d planes[i] = sign * 2^i / (2^b - 1)``, true of sign-magnitude and of the
    offset-binary variant (``unit = (q - 2^(b-1)) / (2^b - 1)`` with ``sign`` all +1).
    """

    name: str

    def unit(self, planes: Tensor, sign: Tensor, place: Tensor | None = None) -> Tensor:
        """Forward weight divided by the scale (a new tensor)."""
        ...

    def encode_(self, weight: Tensor, planes: Tensor, sign: Tensor) -> Tensor:
        """Binarize ``weight`` at ``planes.shape[0]`` bits into ``planes``/``sign`` in place.

        Returns the new scale (0-dim tensor).
        """
        ...

    def decode(self, planes: Tensor, sign: Tensor, scale: Tensor) -> Tensor:
        """De-quantized float weight."""
        ...

    def requantize_(
        self,
        planes: Tensor,
        sign: Tensor,
        *,
        delta: Tensor | None = None,
        work: Tensor | None = None,
        place: Tensor | None = None,
    ) -> None:
        """Snap real-valued planes (plus an optional integer change ``delta``) to clean planes."""
        ...

    def requantize_code_(self, planes: Tensor, place: Tensor | None = None) -> None:
        """The reference code's re-quantization (planes may leave {0, 1})."""
        ...

    def decode_upload(self, planes: Tensor, sign: Tensor, scale: Tensor) -> Tensor:
        """The uploaded float weight, as the code's ``to_float`` computes it (no clip)."""
        ...


class SignMagnitude:
    """Sign + magnitude bit planes, as in the reference code (docs/algorithm.md section 2).

    ``encode_``: ``s = max|W|``, ``q = round(|W| (2^b-1) / s)``, planes = binary digits of
    ``q``, ``sign = +1`` where ``W > 0`` and ``q > 0``, else -1, as the code does (a weight
    that rounds to 0 is "negative": its value is 0 but its gradient's direction is not).
    An all-zero weight gets ``s = 0`` and all-zero planes.

    ``requantize_`` (docs/algorithm.md section 4, paper rule): ``q = round(sum_i 2^i B[i])``; where
    ``q < 0`` the weight's sign flips and ``|q|`` is kept; ``|q|`` is clamped to ``2^b - 1``;
    then ``q`` is re-split, so planes are always exactly 0/1.
    """

    name = "sign_magnitude"

    def encode_(self, weight: Tensor, planes: Tensor, sign: Tensor) -> Tensor:
        bits = planes.shape[0]
        lv = levels(bits)
        w = weight.detach().to(dtype=planes.dtype, device=planes.device)
        mag = w.abs()
        scale = mag.amax() if mag.numel() else mag.new_zeros(())
        # q = round(|W| * L / s), in the reference code's order ((|W| * L) / s: |W| * (L / s)
        # rounds differently at a few half-way points); the clamp guards the top level.
        mag.mul_(float(lv)).div_(scale.clamp_min(SCALE_EPS)).round_().clamp_(0, lv)
        # sign = +1 where the *rounded* weight is positive, else -1 (the code's
        # ``where(round(W L / s) > 0, 1, -1)``): a weight that rounds to 0 gets -1. Its value
        # is 0 either way, but its planes' gradient carries the sign, so the convention
        # decides which way the first step moves it (measured: docs/fidelity.md).
        sign.copy_(w).sign_().sub_(0.5).sign_()  # {-1, 0, 1} -> {-1, -1, 1}
        sign.masked_fill_(mag == 0, -1.0)
        split_planes_(mag, planes)
        return scale

    def unit(self, planes: Tensor, sign: Tensor, place: Tensor | None = None) -> Tensor:
        return unit_value(planes, sign, place)

    def decode(self, planes: Tensor, sign: Tensor, scale: Tensor) -> Tensor:
        return unit_value(planes.detach(), sign).mul_(scale.detach())

    def requantize_(
        self,
        planes: Tensor,
        sign: Tensor,
        *,
        delta: Tensor | None = None,
        work: Tensor | None = None,
        place: Tensor | None = None,
    ) -> None:
        bits = planes.shape[0]
        if place is None:
            place = place_values(bits, device=planes.device, dtype=planes.dtype)
        q = integer_value(planes, place, out=work)
        if delta is not None:
            q.add_(delta)
        q.round_()
        # Flip the sign where q went negative: factor = sign(q + 0.5) is +1 for q >= 0 and -1
        # for q <= -1 (q is integral here); computed in planes[0] as scratch, which the split
        # below overwrites anyway, so no allocation.
        scratch = planes[0]
        torch.add(q, 0.5, out=scratch).sign_()
        sign.mul_(scratch)
        q.abs_().clamp_(max=levels(bits))
        split_planes_(q, planes, place)


    @staticmethod
    def _code_unit(planes: Tensor) -> Tensor:
        """``sum_k B[k] fl32(2^k / L)`` summed as the code sums it: planes MSB-first on the last
        axis (the order of a float sum matters for ties), a new weight-shaped tensor."""
        bits = planes.shape[0]
        lv = levels(bits)
        code_layout = planes.detach().flip(0).movedim(0, -1).contiguous()
        exps = (torch.exp2(torch.arange(bits - 1, -1, -1, dtype=torch.float64)) / lv).to(
            device=planes.device, dtype=planes.dtype)
        return torch.sum(code_layout * exps, dim=-1)

    def decode_upload(self, planes: Tensor, sign: Tensor, scale: Tensor) -> Tensor:
        """The float weight a client uploads, computed as the code's ``to_float`` does:
        ``(sum_k B[k] 2^k / L) * sign * s`` *without* the forward pass's clip. On clean planes
        this is :meth:`decode` up to the last bit; with the code's re-quantization a weight
        whose digits exceed ``2^b - 1`` is uploaded beyond the grid, as there."""
        return self._code_unit(planes).mul_(sign).mul_(scale.detach())

    def requantize_code_(self, planes: Tensor, place: Tensor | None = None) -> None:
        """The reference code's re-quantization (``BitConv2d.quant``), quirks included.

        ``q = round(sum_i 2^i B[i] / (2^b-1) * (2^b-1))``, re-split from the top with floor
        division and *no* clamp or sign flip: a magnitude above ``2^b - 1`` leaves a top plane
        of 2 or more, a negative one a top plane of -1 (or less) over positive lower planes.
        The forward pass clips either to the grid, so the weight is the same as with the clean
        rule, but the planes differ: the excess is remembered by later steps and the negative
        top plane counts as dense in precision reduction (docs/fidelity.md).
        """
        bits = planes.shape[0]
        lv = levels(bits)
        if place is None:
            place = place_values(bits, device=planes.device, dtype=planes.dtype)
        q = self._code_unit(planes).mul_(lv).round_()
        top = float(1 << (bits - 1))
        head = torch.floor(q / top)
        q.sub_(head * top)  # the rest lies in [0, 2^(b-1))
        if bits > 1:
            split_planes_(q, planes[:-1], place[:-1])
        planes[-1].copy_(head)


#: The representation fedsim uses.
SIGN_MAGNITUDE = SignMagnitude()


def binarize(weight: Tensor, bits: int) -> tuple[Tensor, Tensor, Tensor]:
    """Binarize a float tensor at ``bits`` bits: returns new ``(planes, sign, scale)``."""
    bits = check_bits(bits)
    dtype = weight.dtype if weight.is_floating_point() else torch.float32
    planes = torch.empty((bits, *weight.shape), dtype=dtype, device=weight.device)
    sign = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    scale = SIGN_MAGNITUDE.encode_(weight, planes, sign)
    return planes, sign, scale


def dequantize(planes: Tensor, sign: Tensor, scale: Tensor) -> Tensor:
    """Float weight ``s * sign * (sum_i 2^i planes[i]) / (2^b - 1)`` (a new tensor)."""
    return SIGN_MAGNITUDE.decode(planes, sign, scale)


def requantize_(planes: Tensor, sign: Tensor) -> None:
    """Snap ``planes`` back to clean binary planes in place (see :class:`SignMagnitude`)."""
    SIGN_MAGNITUDE.requantize_(planes, sign)
