"""The two straight-through estimators, each in one autograd function (STYLE.md, PyTorch).

* :class:`BitPlaneSTE`: bit planes, sign and scale to the forward weight
  ``W = s * round(clip(sign * sum_i 2^i B[i], -L, L)) / L`` (``L = 2^b - 1``); the backward
  pass treats the rounding and the clip as identity, so every plane and the scale get a
  gradient (docs/algorithm.md section 2).
* :class:`ActFakeQuantSTE`: activation fake-quantization with a ReLU6-style clip, scale = the
  max of the whole (clipped) batch tensor, ``2^a - 1`` levels; gradient passes straight through
  inside the clip range and is zero outside it (and at it), as ReLU6's is (docs/algorithm.md
  section 1).

Why one function each and not ``x + (q(x) - x).detach()``: the detach trick keeps the float
intermediate and the difference alive for backward; a Function saves only what its backward
reads (the unit weight, a few hundred KB; for activations the input, which the preceding ReLU
already saves, so it costs no extra memory).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fedsim.quant.representation import (
    SCALE_EPS,
    SIGN_MAGNITUDE,
    BitPlaneRepresentation,
    levels,
)


class BitPlaneSTE(torch.autograd.Function):
    """``(planes [b, *shape], sign, scale, place [b], representation) -> weight``.

    ``representation`` (default sign-magnitude) supplies the forward value; see the module
    docstring for the gradient.
    """

    @staticmethod
    def forward(
        ctx: Any,
        planes: Tensor,
        sign: Tensor,
        scale: Tensor,
        place: Tensor,
        representation: BitPlaneRepresentation = SIGN_MAGNITUDE,
    ) -> Tensor:
        unit = representation.unit(planes, sign, place)
        ctx.save_for_backward(unit, sign, scale, place)
        ctx.levels = levels(planes.shape[0])
        return unit * scale

    @staticmethod
    def backward(ctx: Any, grad_w: Tensor) -> tuple[Tensor | None, None, Tensor | None, None, None]:
        unit, sign, scale, place = ctx.saved_tensors
        g_planes = g_scale = None
        if ctx.needs_input_grad[0]:
            # dW/dB[i] = s * sign * 2^i / L, multiplied in the reference code's order
            # ((g * s) * sign) * fl32(2^i / L): last-bit differences in a gradient are enough
            # to part two runs whose activations are quantized to 4 bits (docs/fidelity.md).
            g = grad_w * scale
            g.mul_(sign)
            unit_place = (place.double() / ctx.levels).to(g.dtype)
            g_planes = g.unsqueeze(0) * unit_place.view(-1, *([1] * g.dim()))
        if ctx.needs_input_grad[2]:
            # The same reduction autograd uses for a broadcast product with the scale.
            g_scale = (grad_w * unit).sum().view_as(scale)
        return g_planes, None, g_scale, None, None


class ActFakeQuantSTE(torch.autograd.Function):
    """``(x, levels, clip) -> fake-quantized x``; see the module docstring.

    ``levels`` is ``2^a - 1`` (15 at 4 bits); ``clip`` is the ReLU6-style bound (None: no
    clip). Symmetric in sign, like the reference code's quantizer, so it is exact for the
    non-negative post-ReLU activations it sees in the zoo and still sane elsewhere.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, n_levels: int, clip: float | None) -> Tensor:
        ctx.clip = clip
        if clip is not None:
            ctx.save_for_backward(x)
        if x.numel() == 0:
            return x.clone()
        lo, hi = torch.aminmax(x.detach())
        amax = torch.maximum(hi, lo.neg())
        if clip is not None:
            amax = amax.clamp(max=clip)
        amax = amax.clamp(min=SCALE_EPS)
        # clamp(x * L / a, -L, L) is x clipped to [-a, a] (a <= clip) in grid units. The
        # operations run in the reference code's order, (x * L) / a then round, / L, * a:
        # x * (L / a) rounds differently near the grid's half-way points, and one activation
        # one level off changes every later layer (measured: logits 0.17 apart at 4 bits).
        y = x.detach() * float(n_levels)
        y.div_(amax).clamp_(-n_levels, n_levels).round_().div_(float(n_levels)).mul_(amax)
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor, None, None]:
        if ctx.clip is None:
            return grad_y, None, None
        (x,) = ctx.saved_tensors
        # ReLU6's own backward kernel: grad where -clip < x < clip, else 0; one fused pass.
        return torch.ops.aten.hardtanh_backward(grad_y, x, -ctx.clip, ctx.clip), None, None
