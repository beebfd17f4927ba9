"""Bit-level group Lasso (docs/algorithm.md section 3).

    R = lambda / P_tot * sum_l (P_l * b_l) * sum_i sqrt(||B_l[i]||_2^2 + 1e-8)

One group per (layer, bit plane); ``P_l`` is the layer's weight count, ``b_l`` its current
bit-width, ``P_tot`` the weight count of all bit-vector layers (the reference code's
``total_param``: quantized conv/linear weights, biases excluded since they stay float).
The weight ``P_l * b_l`` pushes large, high-precision layers hardest towards empty planes.

A bias held as bit planes (``bias: planes``, the reference code's FC bias) adds its own groups
with the weight ``P_bias * b_bias`` and counts in ``P_tot``, as in the code; only
:func:`group_lasso` includes them (the closed-form gradient helpers cover weight planes).

Two ways to use it: :func:`group_lasso` returns a differentiable scalar to add to the loss;
:func:`add_group_lasso_grad_` adds the closed-form gradient (:func:`group_lasso_grad`)
straight into ``planes.grad`` after ``backward()``, which builds no autograd graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedsim.quant.convert import bit_layers, quantized_layers
from fedsim.quant.layers import BitPlaneLayer

#: The ``1e-8`` inside each group's square root (keeps the gradient finite at empty planes).
GROUP_EPS = 1e-8


def _total_params(qmodel: nn.Module) -> int:
    total = 0
    for _, m in bit_layers(qmodel):
        total += m.weight_numel if isinstance(m, BitPlaneLayer) else m.weight.numel()
        if isinstance(m, BitPlaneLayer) and m.bias_planes is not None:
            total += m.bias_planes.shape[1]  # the code counts a bit-plane bias too
    return total


def _bias_coeffs(qmodel: nn.Module, lam: float) -> list[tuple[BitPlaneLayer, float]]:
    """Groups of the biases held as bit planes: ``P_bias * b_bias`` as for weights."""
    layers = [m for _, m in quantized_layers(qmodel) if m.bias_planes is not None]
    if not layers:
        return []
    p_tot = _total_params(qmodel)
    return [(m, lam * m.bias_planes.shape[1] * m.bias_bits / p_tot)  # type: ignore[union-attr]
            for m in layers]


def _layer_coeffs(qmodel: nn.Module, lam: float) -> list[tuple[BitPlaneLayer, float]]:
    if lam < 0:
        raise ValueError(f"group Lasso lambda must be >= 0, got {lam}")
    layers = [m for _, m in quantized_layers(qmodel)]
    if not layers:
        return []
    p_tot = _total_params(qmodel)
    return [(m, lam * m.weight_numel * m.bits / p_tot) for m in layers]


def _group_norms(planes: Tensor) -> Tensor:
    """``sqrt(||B[i]||^2 + eps)`` per plane, shape ``[b]`` (differentiable)."""
    flat = planes.reshape(planes.shape[0], -1)
    return flat.pow(2).sum(dim=1).add(GROUP_EPS).sqrt()


def _inv_group_norms(planes: Tensor) -> Tensor:
    """``1 / sqrt(||B[i]||^2 + eps)`` per plane without a ``[b, N]`` temporary (no grad)."""
    flat = planes.reshape(planes.shape[0], -1)
    return torch.linalg.vector_norm(flat, dim=1).square_().add_(GROUP_EPS).rsqrt_()


def group_lasso(qmodel: nn.Module, lam: float) -> Tensor:
    """The regulariser ``R`` as a differentiable 0-dim tensor (0 without bit-plane layers)."""
    coeffs = _layer_coeffs(qmodel, lam)
    if not coeffs:
        p = next(qmodel.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)
    total = None
    for m, c in coeffs:
        term = _group_norms(m.planes).sum() * c
        total = term if total is None else total + term
    for m, c in _bias_coeffs(qmodel, lam):
        assert m.bias_planes is not None and total is not None
        total = total + _group_norms(m.bias_planes).sum() * c
    assert total is not None
    return total


@torch.no_grad()
def group_lasso_grad(qmodel: nn.Module, lam: float) -> list[Tensor]:
    """``dR/dplanes`` per bit-plane layer (bit-vector order, float layers skipped).

    ``dR/dB_l[i] = c_l * B_l[i] / sqrt(||B_l[i]||^2 + eps)``, ``c_l = lambda P_l b_l / P_tot``.
    """
    out = []
    for m, c in _layer_coeffs(qmodel, lam):
        planes = m.planes.detach()
        coef = _inv_group_norms(planes).mul_(c)
        out.append(planes * coef.view(-1, *([1] * (planes.dim() - 1))))
    return out


@torch.no_grad()
def add_group_lasso_grad_(qmodel: nn.Module, lam: float) -> None:
    """Add ``dR/dplanes`` into each layer's ``planes.grad`` in place (allocating it if None).

    Equivalent to adding :func:`group_lasso` to the loss before ``backward()``, without the
    autograd graph (one ``[b]`` norm vector and one fused multiply-add per layer).
    """
    for m, c in _layer_coeffs(qmodel, lam):
        planes = m.planes.detach()
        coef = _inv_group_norms(planes).mul_(c)
        coef = coef.view(-1, *([1] * (planes.dim() - 1)))
        if m.planes.grad is None:
            m.planes.grad = planes * coef
        else:
            m.planes.grad.addcmul_(planes, coef)
