"""UVeQFed (Shlezinger et al., IEEE TSP 2021): universal vector quantization of the uploaded
model difference — subtractive dithered 2-D hexagonal lattice quantization at ``floor(B_n)``
bits per weight, dither shared with the server through the task seed."""

from __future__ import annotations

from fedsim.algorithms.compressors import hex_lattice_dithered
from fedsim.algorithms.params import UVeQFedParams
from fedsim.algorithms.quantized_uplink import QuantizedUplink


class UVeQFed(QuantizedUplink):
    name = "uveqfed"
    params: UVeQFedParams
    compressor = staticmethod(hex_lattice_dithered)
