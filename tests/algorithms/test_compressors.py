"""The baselines' update quantizers: unbiased / dithered as published."""

from __future__ import annotations

import torch

from fedsim.algorithms.compressors import hex_lattice_dithered, stochastic_uniform


def test_stochastic_uniform_is_unbiased_and_on_grid() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, dtype=torch.float64)
    draws = torch.stack([stochastic_uniform(x, 2, g) for _ in range(4000)])
    assert torch.allclose(draws.mean(0), x, atol=0.05 * float(x.abs().max()))
    levels = draws[0].abs() / x.abs().max() * 3
    assert torch.allclose(levels, levels.round(), atol=1e-9)


def test_hex_lattice_error_is_small_and_unbiased() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1001, dtype=torch.float64)
    for bits in (2, 4, 8):
        q = hex_lattice_dithered(x, bits, g)
        assert q.shape == x.shape
        err = (q - x).abs().max()
        # the error lies inside a lattice cell: at most the cell's circumradius
        m = float(x.abs().max())
        delta = 2 * m / ((2.0 ** (2 * bits)) * (3**0.5 / 2)) ** 0.5
        assert err <= delta / 3**0.5 + 1e-9
    draws = torch.stack([hex_lattice_dithered(x[:50], 2, g) for _ in range(3000)])
    assert torch.allclose(draws.mean(0), x[:50], atol=0.05 * float(x[:50].abs().max()))


def test_more_bits_less_error() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4096, dtype=torch.float64)
    errs = [float((hex_lattice_dithered(x, b, g) - x).pow(2).mean()) for b in (1, 2, 4, 8)]
    assert errs == sorted(errs, reverse=True)
