"""Quantization core: the pure tensor math FedMPQ and its quantized baselines run on.

Knows nothing of federated learning, SimPy or devices. Modules, one job each:

* :mod:`~fedsim.quant.representation` — bit planes + sign + scale of a weight: binarize,
  de-quantize, re-quantize (behind a small :class:`BitPlaneRepresentation` protocol).
* :mod:`~fedsim.quant.ste` — the two straight-through estimators (weights, activations).
* :mod:`~fedsim.quant.layers` — :class:`QConv2d`, :class:`QLinear`, :class:`ActFakeQuant`.
* :mod:`~fedsim.quant.convert` — float model <-> bit-plane model from one bit vector.
* :mod:`~fedsim.quant.lasso` — bit-level group Lasso and its gradient.
* :mod:`~fedsim.quant.optim` — :class:`BitPlaneSGD` (power-of-two plane steps).
* :mod:`~fedsim.quant.reduce` — precision reduction after local training.
* :mod:`~fedsim.quant.payload_spec` — exact uplink/downlink bits.

A FedMPQ client round, in these terms::

    load_float_into_quantized(qmodel, global_state, bits)     # downlink
    opt = BitPlaneSGD(qmodel, lr=0.25)
    for x, y in batches:
        loss = F.cross_entropy(qmodel(x), y) + group_lasso(qmodel, 1e-3)
        opt.zero_grad(); loss.backward(); opt.step()
    new_bits, reductions = reduce_precision(qmodel, epsilon=0.02)
    upload = float_state_dict(qmodel); up_bits = quantized_payload_bits(qmodel)
"""

from fedsim.quant.convert import (
    float_state_dict,
    get_bits,
    load_float_into_quantized,
    quantized_layers,
    set_act_quant,
    to_float,
    to_quantized,
)
from fedsim.quant.lasso import add_group_lasso_grad_, group_lasso, group_lasso_grad
from fedsim.quant.layers import ActFakeQuant, QConv2d, QLinear
from fedsim.quant.optim import BitPlaneSGD, power_of_two_
from fedsim.quant.payload_spec import payload_spec, quantized_payload_bits
from fedsim.quant.reduce import reduce_layer_, reduce_precision
from fedsim.quant.representation import integer_value

__all__ = [
    "ActFakeQuant",
    "BitPlaneSGD",
    "QConv2d",
    "QLinear",
    "add_group_lasso_grad_",
    "float_state_dict",
    "get_bits",
    "group_lasso",
    "group_lasso_grad",
    "integer_value",
    "load_float_into_quantized",
    "payload_spec",
    "power_of_two_",
    "quantized_layers",
    "quantized_payload_bits",
    "reduce_layer_",
    "reduce_precision",
    "set_act_quant",
    "to_float",
    "to_quantized",
]
