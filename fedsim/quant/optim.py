"""Optimizer for bit-plane models (docs/algorithm.md section 4, after WAGE).

Bit planes: momentum on the plane gradients (no weight decay), each step snapped to a power of
two, then the layer is re-quantized to clean 0/1 planes. Everything else (scales, biases,
BatchNorm, float layers) takes plain momentum SGD, as ``torch.optim.SGD`` would.

Plane step, ``rounding="round"`` (default; the code's ``S(x) = 2^round(log2 x)``) or
``"ceil"`` (the paper text's ``2^ceil(log2 x)``)::

    m <- momentum * m + g
    B <- B - sign(m) * S(lr * |m|)          (0 where m == 0)
    q  = round(sum_i 2^i B[i]); sign flips where q < 0; |q| clamped to 2^b - 1; re-split

``rule="reference"``: the authors' code's later optimizer (``QuantOptimizer.step``), the one
that produced the reference run we are held to, transcribed *faithfully, quirks included*.
Per bit layer with ``b`` bits, after the momentum update ``m <- momentum * m + g``::

    gs    = max|m| / (2^b - 1)
    a_j   = 2^round(log2(lr |m_j| / gs)) * 2^j      plane j (LSB first), place value 2^j
    step_j = a_j * gs * sign(m_j)   where 1 <= a_j <= 2^b, else 0   (top steps dropped)
    p     = clip(sum_{a_j < 1} a_j, 0, 1)            one Bernoulli probability per weight
    step_0 += Bernoulli(p) * gs * sign(m_top)        the carry lands on the LSB plane
    m     <- step                                     (the momentum buffer is overwritten)
    B     <- B - lr * step                            (lr applied a second time)

then the code's own re-quantization (no clamp, no sign flip: planes may hold a top digit of 2
or -1; :meth:`~fedsim.quant.representation.SignMagnitude.requantize_code_`). ``sign(0)`` is
-1 as in the code, and the Bernoulli is drawn twice per layer and step with the first draw
discarded (the code samples twice), from the ``generator`` argument: so the random stream is
the code's, given the same seed. Its effective step grows with ``2^b``: 8-bit layers train
within a few steps while 2-4-bit layers barely move (docs/fidelity.md measures it).

Momentum (paper rule): a true momentum buffer ``m`` (as ``torch.optim.SGD``); the reference
rule overwrites it with the step, as the code does.

Hot path: every buffer (momentum, step, integer values, noise) is allocated on a layer's
first step and reused; a step is a fixed sequence of in-place ops per layer. When a layer's
bit-width changes (precision reduction, downlink) its ``planes`` Parameter keeps its identity
and its momentum restarts at the next step, so the optimizer need not be rebuilt.
``state[planes]["step"]`` holds the last applied plane step (in plane units) for inspection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from fedsim.quant.convert import quantized_layers
from fedsim.quant.layers import BitPlaneLayer
from fedsim.quant.representation import levels

ROUNDINGS = ("round", "ceil")
RULES = ("paper", "reference")


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
        rounding: ``"round"`` (default) or ``"ceil"``: the paper rule's power of two.
        rule: ``"paper"`` (default) or ``"reference"`` (see module docstring).
        generator: ``torch.Generator`` for the reference rule's carry (required there).

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
        rule: str = "paper",
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
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if rule == "reference" and not isinstance(generator, torch.Generator):
            raise ValueError("rule='reference' needs an explicit torch.Generator")
        layers = [m for _, m in quantized_layers(qmodel)]
        planes = [m.planes for m in layers if m.planes.requires_grad]
        bias_planes = [m.bias_planes for m in layers
                       if m.bias_planes is not None and m.bias_planes.requires_grad]
        plane_ids = {id(p) for p in planes} | {id(p) for p in bias_planes}
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
        if bias_planes:
            # The code's optimizer gives a bias's 2-D plane tensor its float rule (plain
            # momentum SGD) and then re-quantizes it with the rest of the layer.
            groups.append({"params": bias_planes, "lr": lr if float_lr is None else float_lr,
                           "kind": "bias_planes", "weight_decay": 0.0})
        if not planes and not rest:
            raise ValueError("model has no trainable parameters")
        super().__init__(groups, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.rounding = rounding
        self.rule = rule
        self.generator = generator
        self._layer_of: dict[int, BitPlaneLayer] = {id(m.planes): m for m in layers}
        self._bias_layer_of: dict[int, BitPlaneLayer] = {
            id(m.bias_planes): m for m in layers if m.bias_planes is not None}

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
            if group["kind"] == "bias_planes":
                for p in group["params"]:
                    self._bias_layer_of[id(p)].requantize_bias_(code=self.rule == "reference")
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
            if self.rule == "reference":
                self._reference_step(p, layer, st, lr)
                continue
            torch.abs(buf, out=step)
            power_of_two_(step.mul_(lr), self.rounding).copysign_(buf)
            p.sub_(step)
            layer.representation.requantize_(p, layer.sign, work=st["q"], place=layer.place)

    def _reference_step(
        self, p: Tensor, layer: BitPlaneLayer, st: dict[str, Tensor], lr: float
    ) -> None:
        """The code's ``QuantOptimizer.step`` for one bit layer (module docstring), op for op
        in the same order, so that equal inputs give bit-equal steps."""
        step, buf = st["step"], st["momentum_buffer"]
        bits = layer.bits
        gs = buf.abs().amax() / float(levels(bits))
        if not float(gs) > 0:  # all-zero momentum: the code's 0/0 gives no step either
            step.zero_()
            buf.zero_()
            return
        place = layer.place.view(-1, *([1] * (step.dim() - 1)))
        # dW = 2^round(log2(lr |m| / gs)) * 2^j;  dB = log2(dW)
        dw = torch.abs(buf).div_(gs).mul_(lr).log2_().round_()
        dw = torch.pow(2.0, dw).mul_(place)
        db = torch.log2(dw)
        pos = torch.where((db >= 0) & (db <= bits), torch.pow(2.0, db), torch.zeros_like(db))
        neg = torch.where(db < 0, torch.pow(2.0, db), torch.zeros_like(db))
        p_bern = neg.sum(dim=0).clamp_(0.0, 1.0)
        torch.bernoulli(p_bern, generator=self.generator)  # the code draws twice, keeps the 2nd
        carry = torch.bernoulli(p_bern, generator=self.generator)
        sign = torch.where(buf > 0, 1.0, -1.0)
        torch.mul(pos.mul_(gs), sign, out=step)
        step[0].add_(carry.mul_(gs).mul_(sign[-1]))
        buf.copy_(step)  # the momentum buffer becomes the step
        p.add_(step, alpha=-lr)  # lr applied a second time
        layer.representation.requantize_code_(p, place=layer.place)  # no clamp, no sign flip

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
