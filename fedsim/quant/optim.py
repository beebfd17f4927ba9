"""Optimizer for bit-plane models (FEDMPQ.md section 4, after WAGE).

Bit planes: momentum on the plane gradients (no weight decay), each step snapped to a power of
two, then the layer is re-quantized to clean 0/1 planes. Everything else (scales, biases,
BatchNorm, float layers) takes plain momentum SGD, as ``torch.optim.SGD`` would.

Plane step, ``rounding="round"`` (default; the code's ``S(x) = 2^round(log2 x)``) or
``"ceil"`` (the paper text's ``2^ceil(log2 x)``)::

    m <- momentum * m + g
    B <- B - sign(m) * S(lr * |m|)          (0 where m == 0)
    q  = round(sum_i 2^i B[i]); sign flips where q < 0; |q| clamped to 2^b - 1; re-split

``rounding="stochastic"``: a corrected form of the reference's later revision (kept as an
option, not the default). Per layer, with ``M = S(max |m|)``::

    a_i   = S(lr * |m_i| / M)                 per-plane power-of-two step (lr applied once)
    d_i   = 2^i * a_i, dropped where d_i > 2^(b-1)   step in LSB units (place value);
                                              a step above the top bit is dropped
    D     = sum_i sign(m_i) d_i               whole-LSB parts are exact; the sub-LSB parts
    q    <- q - floor(D + U),  U ~ U[0, 1)    sum into one Bernoulli carry: E[change] = -D

then the same re-quantization. ``U`` comes from the ``generator`` argument, never the global
RNG. (The reference revision applies ``lr`` twice; here it is applied once.)

Momentum: a true momentum buffer ``m`` (as ``torch.optim.SGD``). The paper-time reference
optimizer wrote the snapped step back into its momentum buffer, so its "momentum" decayed a
power-of-two step rather than the gradient; fedsim does not copy that.

Hot path: every buffer (momentum, step, integer values, noise) is allocated on a layer's
first step and reused; a step is a fixed sequence of in-place ops per layer. When a layer's
bit-width changes (precision reduction, downlink) its ``planes`` Parameter keeps its identity
and its momentum restarts at the next step, so the optimizer need not be rebuilt.
``state[planes]["step"]`` holds the last applied plane step (in plane units for
``round``/``ceil``, in LSB units for ``stochastic``) for inspection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedsim.quant.convert import quantized_layers
from fedsim.quant.layers import BitPlaneLayer

ROUNDINGS = ("round", "ceil", "stochastic")


def power_of_two_(x: Tensor, rounding: str = "round") -> Tensor:
    """In place: ``x <- 2^round(log2 x)`` (or ``ceil``); 0 stays 0. ``x`` must be >= 0."""
    x.log2_()
    if rounding == "ceil":
        x.ceil_()
    else:
        x.round_()
    return x.exp2_()


class BitPlaneSGD(torch.optim.Optimizer):
    """Power-of-two momentum steps on bit planes, momentum SGD on the rest.

    Args:
        qmodel: a model from :func:`~fedsim.quant.convert.to_quantized`.
        lr: plane learning rate (the paper's 0.25).
        momentum: momentum of both groups (0.9).
        float_lr: learning rate of scales, biases, BatchNorm and float layers (default ``lr``).
        weight_decay: L2 on the float group only (planes never decay); the reference uses 0.
        rounding: ``"round"`` (default), ``"ceil"`` or ``"stochastic"`` (see module docstring).
        generator: ``torch.Generator`` for ``"stochastic"`` (required there, unused otherwise).

    Param groups: ``param_groups[0]`` holds the planes (``kind="planes"``), ``[1]`` the rest
    (``kind="float"``), so an LR scheduler scales both.
    """

    def __init__(
        self,
        qmodel: nn.Module,
        lr: float,
        momentum: float = 0.9,
        float_lr: float | None = None,
        weight_decay: float = 0.0,
        rounding: str = "round",
        generator: torch.Generator | None = None,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if float_lr is not None and not float_lr >= 0:
            raise ValueError(f"float_lr must be >= 0, got {float_lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if rounding == "stochastic" and not isinstance(generator, torch.Generator):
            raise ValueError("rounding='stochastic' needs an explicit torch.Generator")
        layers = [m for _, m in quantized_layers(qmodel)]
        planes = [m.planes for m in layers if m.planes.requires_grad]
        plane_ids = {id(p) for p in planes}
        rest = [p for p in qmodel.parameters() if p.requires_grad and id(p) not in plane_ids]
        groups: list[dict[str, Any]] = [
            {"params": planes, "lr": lr, "kind": "planes", "weight_decay": 0.0},
            {
                "params": rest,
                "lr": lr if float_lr is None else float_lr,
                "kind": "float",
                "weight_decay": weight_decay,
            },
        ]
        if not planes and not rest:
            raise ValueError("model has no trainable parameters")
        super().__init__(groups, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.rounding = rounding
        self.generator = generator
        self._layer_of: dict[int, BitPlaneLayer] = {id(m.planes): m for m in layers}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["kind"] == "planes":
                self._step_planes(group)
            else:
                self._step_float(group)
        return loss

    # -- planes ----------------------------------------------------------------------------
    def _plane_state(self, p: Tensor, layer: BitPlaneLayer) -> tuple[dict[str, Tensor], bool]:
        st = self.state[p]
        buf = st.get("momentum_buffer")
        if buf is not None and buf.shape == p.shape:
            return st, False
        # First step, or the bit-width changed since the last one: (re)allocate.
        st.clear()
        st["momentum_buffer"] = torch.empty_like(p)
        st["step"] = torch.empty_like(p)
        st["q"] = torch.empty(layer.weight_shape, dtype=p.dtype, device=p.device)
        if self.rounding == "stochastic":
            st["delta"] = torch.empty_like(st["q"])
        return st, True

    def _step_planes(self, group: dict[str, Any]) -> None:
        lr, mom = group["lr"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            layer = self._layer_of[id(p)]
            st, fresh = self._plane_state(p, layer)
            buf = st["momentum_buffer"]
            if fresh or mom == 0:
                buf.copy_(p.grad)
            else:
                buf.mul_(mom).add_(p.grad)
            step = st["step"]
            torch.abs(buf, out=step)
            if self.rounding == "stochastic":
                self._stochastic_step(p, layer, st, lr)
                continue
            power_of_two_(step.mul_(lr), self.rounding).copysign_(buf)
            p.sub_(step)
            layer.representation.requantize_(p, layer.sign, work=st["q"], place=layer.place)

    def _stochastic_step(
        self, p: Tensor, layer: BitPlaneLayer, st: dict[str, Tensor], lr: float
    ) -> None:
        step, buf, q, delta = st["step"], st["momentum_buffer"], st["q"], st["delta"]
        # step holds |m|. Normalise by the power-of-two of the layer's max momentum (WAGE).
        norm = power_of_two_(step.amax()).clamp_(min=torch.finfo(step.dtype).tiny)
        power_of_two_(step.mul_(lr / norm))
        # Place value: the step of plane i moves the integer magnitude by 2^i * a_i.
        step.mul_(layer.place.view(-1, *([1] * (step.dim() - 1))))
        # Drop steps above the top bit 2^(b-1). All values are powers of two, so "<= top" is
        # "< 1.5 top"; F.threshold_ keeps x > t, hence the negation (in place, no mask).
        top = float(1 << (layer.bits - 1))
        F.threshold_(step.neg_(), -1.5 * top, 0.0)
        step.neg_().copysign_(buf)
        torch.sum(step, dim=0, out=delta)
        # Stochastic rounding: floor(D + U) equals floor(D) + Bernoulli(frac(D)).
        q.uniform_(0.0, 1.0, generator=self.generator)
        delta.add_(q).floor_().neg_()
        layer.representation.requantize_(p, layer.sign, delta=delta, work=q, place=layer.place)

    # -- everything else -------------------------------------------------------------------
    def _step_float(self, group: dict[str, Any]) -> None:
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad
            if mom == 0:
                if wd:
                    p.mul_(1.0 - lr * wd)
                p.add_(g, alpha=-lr)
                continue
            st = self.state[p]
            buf = st.get("momentum_buffer")
            if buf is None or buf.shape != p.shape:
                buf = st["momentum_buffer"] = g.detach().clone()
            else:
                buf.mul_(mom).add_(g)
            if wd:
                buf.add_(p, alpha=wd)
            p.add_(buf, alpha=-lr)
