"""Update compressors of the quantized-communication baselines (float training, quantized uplink).

* :func:`stochastic_uniform` — FedPAQ's unbiased quantizer (Reisizadeh et al., AISTATS 2020,
  QSGD-style): per tensor, ``s = 2^b - 1`` levels of ``|x| / max|x|``, stochastic rounding,
  one sign bit; ``E[Q(x)] = x``.
* :func:`hex_lattice_dithered` — UVeQFed (Shlezinger et al., IEEE TSP 2021): subtractive
  dithered lattice quantization with the 2-D hexagonal lattice; the dither is drawn from a
  seed shared with the server, which subtracts it, so the error is uniform over the lattice
  cell and independent of the input.

Both return the de-quantized tensor the server reconstructs; wire size follows from the
bits (see :mod:`fedsim.payload`: ``b`` bits per element plus sign and a 32-bit scale).
"""

from __future__ import annotations

import math

import torch

_SQRT3_2 = math.sqrt(3.0) / 2.0


def stochastic_uniform(x: torch.Tensor, bits: int, generator: torch.Generator) -> torch.Tensor:
    """Unbiased ``bits``-bit stochastic quantization of ``x`` (magnitude levels + sign)."""
    if bits >= 32:
        return x.clone()
    scale = x.abs().max()
    if float(scale) == 0.0:
        return torch.zeros_like(x)
    levels = (1 << bits) - 1
    y = x.abs() / scale * levels
    low = torch.floor(y)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    q = low + (u < (y - low)).to(x.dtype)
    return torch.sign(x) * q * scale / levels


def _hex_nearest(points: torch.Tensor, delta: float) -> torch.Tensor:
    """Nearest point of the hexagonal lattice ``delta * {(a + b/2, b*sqrt(3)/2)}``.

    The hexagonal lattice is the union of two rectangular lattices (spacing ``delta`` by
    ``delta*sqrt(3)``, the second shifted by ``(delta/2, delta*sqrt(3)/2)``); the nearest
    point is the closer of the two rectangular nearest points.
    """
    h = delta * 2 * _SQRT3_2  # = delta * sqrt(3)
    p0 = torch.stack(
        (torch.round(points[:, 0] / delta) * delta, torch.round(points[:, 1] / h) * h), dim=1
    )
    off = torch.tensor([delta / 2, h / 2], dtype=points.dtype)
    shifted = points - off
    p1 = torch.stack(
        (torch.round(shifted[:, 0] / delta) * delta, torch.round(shifted[:, 1] / h) * h), dim=1
    ) + off
    d0 = ((points - p0) ** 2).sum(1)
    d1 = ((points - p1) ** 2).sum(1)
    return torch.where((d0 <= d1).unsqueeze(1), p0, p1)


def hex_lattice_dithered(
    x: torch.Tensor, bits: int, generator: torch.Generator
) -> torch.Tensor:
    """Subtractive dithered 2-D hexagonal lattice quantization at ``bits`` bits per element.

    Rate: the lattice spacing is set so that the support ``[-m, m]^2`` (``m = max|x|``) holds
    about ``2^(2 bits)`` lattice points, i.e. ``bits`` bits per element before entropy coding.
    The dither is uniform over the lattice's Voronoi cell (drawn by rejection from the
    bounding box of the hexagon, from the shared generator).
    """
    if bits >= 32:
        return x.clone()
    flat = x.reshape(-1)
    m = float(flat.abs().max()) if flat.numel() else 0.0
    if m == 0.0:
        return torch.zeros_like(x)
    n = flat.numel()
    pad = n % 2
    v = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, 2)
    # points per unit area of the lattice = 1 / (delta^2 sqrt(3)/2); support area (2m)^2
    delta = 2 * m / math.sqrt((2.0 ** (2 * bits)) * _SQRT3_2)
    dither = _uniform_in_hex_cell(v.shape[0], delta, generator, x.dtype)
    q = _hex_nearest(v + dither, delta) - dither
    return q.reshape(-1)[:n].reshape(x.shape)


def _uniform_in_hex_cell(
    count: int, delta: float, generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """``count`` points uniform over the Voronoi cell of the origin (rejection sampling)."""
    out = torch.empty(0, 2, dtype=dtype)
    zero = torch.zeros(1, 2, dtype=dtype)
    while out.shape[0] < count:
        need = count - out.shape[0]
        cand = (torch.rand(int(need * 1.5) + 8, 2, generator=generator, dtype=dtype) - 0.5)
        cand = cand * torch.tensor([delta, delta * 2 / math.sqrt(3.0)], dtype=dtype)
        # in the origin's cell iff the origin is the nearest lattice point
        keep = (_hex_nearest(cand, delta) - zero).abs().sum(1) < 1e-12 * max(1.0, delta)
        out = torch.cat([out, cand[keep]])
    return out[:count]
