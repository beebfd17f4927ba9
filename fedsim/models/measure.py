"""Measure a model's layer table (:class:`~fedsim.spec.ModelSpec`) from the real module.

Why measured, never typed in: the bit vector, the payload and the cost model must describe
exactly the network that trains. One forward pass of a zero batch in eval mode, under no_grad,
reads everything the cost model needs:

* **conv/linear layers** through forward hooks on the modules (they carry the bit vector):
  weight and bias sizes, MACs per sample, input and output elements per sample, groups;
* **every other operator** through a ``TorchDispatchMode`` that sees each ATen call the
  forward pass makes (BatchNorm, ReLU/ReLU6/SiLU, residual adds, pooling, concatenation): its
  kind, the elements it reads and writes per sample and its flops. Functional calls that no
  module hook sees (``out += identity`` in a ResNet block, ``F.adaptive_avg_pool2d``) are
  caught this way too. Views (reshape, flatten, transpose) move no data and are left out.

The batch has two samples, so per-sample sizes are told apart from parameters (a tensor
whose first dimension is the batch is an activation). Matrix products outside ``nn.Linear``
and ``nn.Conv2d`` modules (attention in ViT/Swin) cannot be priced by a per-layer table and
are refused with a clear error rather than silently dropped.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fedsim.models.slots import is_float_only
from fedsim.spec import ElementwiseSpec, LayerSpec, ModelSpec

_BATCH = 2  #: samples in the measuring batch (tells activations from parameters)

#: Modules whose per-sample outputs feed ``ModelSpec.other_act_elems`` (saved for backward).
_OTHER_ACT_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)

#: ATen ops priced by the conv/linear hooks, not as element-wise work.
_CONV_OPS = frozenset({"convolution", "_convolution", "conv2d"})
_MATMUL_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul", "linear",
                         "_scaled_dot_product_flash_attention",
                         "_scaled_dot_product_efficient_attention",
                         "_scaled_dot_product_attention_math"})
#: (kind, flops per output element) by ATen op name; the rest is ``other`` (a copy, 0 flops).
_KINDS: dict[str, tuple[str, float]] = {
    **{op: ("norm", 5.0) for op in (
        "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
        "batch_norm", "native_layer_norm", "layer_norm", "native_group_norm", "group_norm")},
    **{op: ("activation", 1.0) for op in (
        "relu", "relu_", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "clamp",
        "clamp_", "clamp_min", "clamp_min_", "threshold", "threshold_", "elu", "elu_")},
    **{op: ("activation", 4.0) for op in (
        "sigmoid", "sigmoid_", "silu", "silu_", "hardswish", "hardswish_", "hardsigmoid",
        "hardsigmoid_", "gelu", "gelu_", "tanh", "tanh_", "mish", "mish_")},
    **{op: ("binary", 1.0) for op in (
        "add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_")},
    **{op: ("pool", 1.0) for op in (
        "max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
        "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "sum", "amax")},
}


class _OpRecorder(TorchDispatchMode):
    """Records every non-view ATen call of a forward pass as element-wise work."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[ElementwiseSpec] = []
        self.convs = 0
        self.matmuls = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in _CONV_OPS:
            self.convs += 1
            return out
        if name in _MATMUL_OPS:
            self.matmuls += 1
            return out
        schema = func._schema
        is_view = any(r.alias_info is not None and not r.alias_info.is_write
                      for r in schema.returns)
        in_elems = _batch_elems(tree_flatten((args, kwargs or {}))[0])
        if is_view or in_elems == 0:  # views move nothing; factories (empty, zeros) read nothing
            return out
        out_elems = _batch_elems(tree_flatten(out)[0])
        kind, per_elem = _KINDS.get(name, ("other", 0.0))
        flops = per_elem * (in_elems if kind == "pool" else out_elems)
        self.ops.append(ElementwiseSpec(name=name, kind=kind, in_elems=in_elems,
                                        out_elems=out_elems, flops=round(flops)))
        return out


def _batch_elems(leaves: list[Any]) -> int:
    """Per-sample elements of the tensors among ``leaves`` whose first dimension is the batch."""
    total = 0
    for t in leaves:
        if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == _BATCH:
            total += t.numel() // _BATCH
    return total


def model_spec(model: nn.Module, *, name: str, input_shape: tuple[int, int, int]) -> ModelSpec:
    """Measure the layer table of ``model`` with one forward pass of a zero batch.

    Layers are listed in ``named_modules()`` order (the bit-vector order of
    :func:`~fedsim.models.slots.quantizable_layers`). Per layer: weight and bias sizes, MACs
    per sample (conv: output elements x ``in/groups x kh x kw``; linear: output elements x
    ``in_features``), input and output elements per sample, groups. ``float_params`` counts
    every floating parameter and buffer element that is not a conv/linear weight (BatchNorm's
    integer ``num_batches_tracked`` is not a float and is left out). The model's train/eval
    flags are restored afterwards, and no gradient or BatchNorm statistic changes.

    Raises:
        ValueError: a conv/linear layer was not called by the forward pass, or the forward
            pass multiplies matrices outside conv/linear modules (their cost would be unknown).
    """
    layer_modules = [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    out_elems: dict[int, int] = {id(m): 0 for _, m in layer_modules}
    in_elems: dict[int, int] = {id(m): 0 for _, m in layer_modules}
    calls = [0]
    other = [0]

    def layer_hook(module: nn.Module, inp: Any, out: torch.Tensor) -> None:
        out_elems[id(module)] += int(out[0].numel())
        in_elems[id(module)] += int(inp[0][0].numel())
        calls[0] += 1

    def other_hook(_module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        other[0] += int(out[0].numel())

    handles = [m.register_forward_hook(layer_hook) for _, m in layer_modules]
    handles += [
        m.register_forward_hook(other_hook)
        for m in model.modules()
        if isinstance(m, _OTHER_ACT_TYPES)
    ]
    modes = [(m, m.training) for m in model.modules()]
    first = next(iter(model.parameters()), None)
    x = torch.zeros(
        (_BATCH, *input_shape),
        dtype=first.dtype if first is not None else torch.float32,
        device=first.device if first is not None else None,
    )
    recorder = _OpRecorder()
    try:
        model.eval()
        with torch.no_grad(), recorder:
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    if recorder.matmuls + recorder.convs > calls[0]:
        raise ValueError(
            f"{name} multiplies matrices outside nn.Conv2d/nn.Linear modules (e.g. attention): "
            "fedsim's per-layer cost model cannot price them"
        )
    layers = _layer_specs(name, layer_modules, in_elems, out_elems)
    weight_ids = {id(m.weight) for _, m in layer_modules}
    float_params = sum(
        int(t.numel())
        for t in (*model.parameters(), *model.buffers())
        if t.is_floating_point() and id(t) not in weight_ids
    )
    return ModelSpec(
        name=name,
        layers=tuple(layers),
        float_params=float_params,
        other_act_elems=other[0],
        input_elems=int(torch.Size(input_shape).numel()),
        elementwise=tuple(recorder.ops),
    )


def _layer_specs(
    name: str,
    layer_modules: list[tuple[str, nn.Module]],
    in_elems: dict[int, int],
    out_elems: dict[int, int],
) -> list[LayerSpec]:
    layers = []
    for lname, m in layer_modules:
        acts = out_elems[id(m)]
        if acts == 0:
            raise ValueError(f"layer {lname!r} was not used by the forward pass of {name}")
        groups = 1
        depthwise = False
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            macs = acts * (m.in_channels // m.groups) * kh * kw
            kind = "conv"
            groups = int(m.groups)
            depthwise = groups > 1 and m.in_channels == groups
        else:
            assert isinstance(m, nn.Linear)
            macs = acts * m.in_features
            kind = "linear"
        layers.append(
            LayerSpec(
                name=lname,
                kind=kind,
                params=int(m.weight.numel()),
                bias_params=int(m.bias.numel()) if m.bias is not None else 0,
                macs=int(macs),
                act_elems=acts,
                quantized=not is_float_only(m),
                in_elems=in_elems[id(m)],
                groups=groups,
                depthwise=depthwise,
            )
        )
    return layers
