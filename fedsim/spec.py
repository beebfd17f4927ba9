"""Torch-free description of a model's cost-relevant structure.

The models package computes a :class:`ModelSpec` from a real ``nn.Module`` (never typed in);
the cost model, the payload accounting and the engine read only this, so they stay free of
torch and a system-only run can scale to 10^5 clients.

Bit vectors: a *bit vector* has one entry per **quantized** layer, in ``ModelSpec.layers``
order restricted to ``quantized=True``. It is the single source of truth for a client's
precision: it sets the bit planes, the payload and the cost model's input. Bits 1..8 are
bit-plane weights; 32 means a float layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerSpec:
    """One conv or linear layer.

    Attributes:
        name: module path in the model (``layer1.0.conv1``).
        kind: ``"conv"`` or ``"linear"``.
        params: weight parameters (bias excluded: biases stay float).
        bias_params: bias parameters (0 if none).
        macs: forward multiply-accumulates per sample.
        act_elems: output activation elements per sample (saved for backward).
        quantized: whether FedMPQ-style methods give this layer bit planes (1x1 shortcut convs
            stay float, see docs/fedmpq.md).
        in_elems: input activation elements per sample (read by the forward pass and both
            backward passes; 0 when unknown, e.g. a hand-written table).
        groups: convolution groups (1 for dense convs and linear layers).
        depthwise: a convolution with one input channel per group (``groups ==
            in_channels > 1``): a memory-bound operator that runs far below a CPU's peak, so
            the cost model prices it in its own operator class.
    """

    name: str
    kind: str
    params: int
    bias_params: int
    macs: int
    act_elems: int
    quantized: bool = True
    in_elems: int = 0
    groups: int = 1
    depthwise: bool = False

    @property
    def op_class(self) -> str:
        """The cost model's operator class: ``dense_conv``, ``depthwise_conv`` or ``linear``."""
        if self.kind == "linear":
            return "linear"
        return "depthwise_conv" if self.depthwise else "dense_conv"


#: Kinds of element-wise work in :class:`ElementwiseSpec` (what the forward pass dispatched).
ELEMENTWISE_KINDS: tuple[str, ...] = ("norm", "activation", "binary", "pool", "other")


@dataclass(frozen=True)
class ElementwiseSpec:
    """One operator that is not a conv/linear layer (BatchNorm, ReLU, a residual add, pooling).

    Why it is in the table: these operators do a few flops per element and are bound by
    memory traffic; on a CPU they take a large share of a depthwise-separable network's step
    (MobileNetV2 has 52 BatchNorms and 35 ReLU6s beside its 52 convolutions), so a cost model
    that prices only MACs gets such networks' time, and their ranking against dense networks,
    wrong.

    Attributes:
        name: the operator as dispatched (``native_batch_norm``, ``hardtanh_``, ``add``).
        kind: one of :data:`ELEMENTWISE_KINDS`.
        in_elems: elements read per sample (every input that scales with the batch).
        out_elems: elements written per sample.
        flops: arithmetic operations per sample of the forward pass.
    """

    name: str
    kind: str
    in_elems: int
    out_elems: int
    flops: int


@dataclass(frozen=True)
class ModelSpec:
    """Layer table plus the float state that travels with every model.

    Attributes:
        name: model name from the zoo.
        layers: all conv/linear layers in forward order.
        float_params: every parameter/buffer element that is not a conv/linear *weight*
            (biases, BatchNorm affine and running statistics); always sent at 32 bits.
        other_act_elems: per-sample activation elements of non conv/linear ops that are saved
            for backward (BatchNorm, ReLU outputs); feeds the memory model.
        input_elems: elements of one input sample.
        elementwise: every other operator of the forward pass, in dispatch order (empty for a
            hand-written table: the cost model then prices conv/linear work only).
    """

    name: str
    layers: tuple[LayerSpec, ...]
    float_params: int
    other_act_elems: int = 0
    input_elems: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    elementwise: tuple[ElementwiseSpec, ...] = ()

    @property
    def quantized_layers(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.quantized)

    @property
    def n_quantized(self) -> int:
        return len(self.quantized_layers)

    @property
    def quantized_params(self) -> int:
        return sum(layer.params for layer in self.quantized_layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers) + self.float_params

    @property
    def macs_per_sample(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def layer_weights(self) -> list[float]:
        """``w_l = P_l / sum P`` over quantized layers (docs/algorithm.md section 1)."""
        total = self.quantized_params
        return [layer.params / total for layer in self.quantized_layers]

    def expand_bits(self, bits: Sequence[int]) -> list[int]:
        """Per-layer bits for *all* layers: quantized layers take ``bits``, others 32."""
        if len(bits) != self.n_quantized:
            raise ValueError(
                f"bit vector has {len(bits)} entries, model {self.name} has "
                f"{self.n_quantized} quantized layers"
            )
        it = iter(bits)
        return [int(next(it)) if layer.quantized else FLOAT_BITS for layer in self.layers]

    def avg_bits(self, bits: Sequence[int]) -> float:
        """Parameter-weighted average bits over quantized layers (the budget's measure)."""
        return float(sum(w * b for w, b in zip(self.layer_weights(), bits, strict=True)))
