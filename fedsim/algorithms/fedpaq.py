"""FedPAQ (Reisizadeh et al., AISTATS 2020): periodic averaging with an unbiased stochastic
uniform quantizer on the uploaded model difference, ``floor(B_n)`` bits per weight."""

from __future__ import annotations

from fedsim.algorithms.compressors import stochastic_uniform
from fedsim.algorithms.params import FedPAQParams
from fedsim.algorithms.quantized_uplink import QuantizedUplink


class FedPAQ(QuantizedUplink):
    name = "fedpaq"
    params: FedPAQParams
    compressor = staticmethod(stochastic_uniform)
