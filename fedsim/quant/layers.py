"""Drop-in quantized Conv2d/Linear layers and the activation fake-quantizer.

:class:`QConv2d` and :class:`QLinear` compute exactly what ``nn.Conv2d``/``nn.Linear`` compute,
with the weight rebuilt on every forward from bit planes through the straight-through
estimator (:class:`~fedsim.quant.ste.BitPlaneSTE`). A bias stays float unless
:meth:`BitPlaneLayer.quantize_bias_` gives it bit planes (``bias: planes``, docs/algorithm.md
section 1). ``print(model)`` shows each layer's bits (``extra_repr``).

Storage layout (why ``[b, *weight.shape]`` and not a fixed ``[8, ...]`` with an active count):

* the shape *is* the bit-width: ``bits`` is read from ``planes.shape[0]`` (a Python int, no
  tensor flag, so no device sync on forward) and can never disagree with the planes;
* gradient, momentum and the optimizer's workspace cover only the live planes, so memory is
  ``~12 b`` bytes per weight as the cost model assumes (docs/hardware.md section 5), and group
  Lasso, densities and the payload need no masking of dead planes;
* ``state_dict`` is self-describing: loading a state of another bit-width resizes the planes.

The price is a reallocation when the bit-width changes, which happens at most twice per round
(precision reduction, downlink), never per step. The ``planes`` Parameter *object* survives a
change of bits (its ``.data`` is swapped), so an optimizer built on the model stays valid
(:class:`~fedsim.quant.optim.BitPlaneSGD` resets the momentum of a resized layer).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair, _reverse_repeat_tuple
from torch.nn.utils import skip_init

from fedsim.quant.representation import (
    SIGN_MAGNITUDE,
    BitPlaneRepresentation,
    check_bits,
    levels,
    place_values,
)
from fedsim.quant.ste import ActFakeQuantSTE, BitPlaneSTE

#: Default activation bit-width (docs/algorithm.md section 1: 4-bit activations on clients).
DEFAULT_ACT_BITS = 4
#: Default ReLU6-style clip of the activation quantizer.
DEFAULT_ACT_CLIP = 6.0
#: Largest activation bit-width accepted.
MAX_ACT_BITS = 16


def _keep_plane_range(p: nn.Parameter, lo: int, hi: int, place: Tensor | None) -> Tensor:
    """Keep planes ``lo..hi-1`` of a ``[b, ...]`` plane Parameter (its object survives, its
    data becomes a right-sized copy, its gradient is dropped); returns the place values."""
    bits = p.shape[0]
    if not 0 <= lo < hi <= bits:
        raise ValueError(f"cannot keep planes {lo}..{hi - 1} of a {bits}-bit tensor")
    if (lo, hi) == (0, bits) and place is not None:
        return place
    p.data = p.data[lo:hi].clone()
    p.grad = None
    return place_values(hi - lo, device=p.device, dtype=p.dtype)


class BitPlaneLayer(nn.Module):
    """Common part of :class:`QConv2d` and :class:`QLinear`: planes, sign, scale, bias.

    Attributes:
        planes: ``nn.Parameter`` ``[bits, *weight_shape]``, LSB first, exactly 0/1 after every
            re-quantization.
        scale: learnable 0-dim ``nn.Parameter`` ``s`` (on purpose a parameter: FedMPQ trains it).
        sign: buffer of the weight's shape, -1/+1 (saved, not optimised).
        place: non-persistent buffer ``[1, 2, ..., 2^(bits-1)]`` (the place values).
        bias: float ``nn.Parameter`` or None (None too once the bias has bit planes).
        bias_planes, bias_sign, bias_scale: the bias as bit planes (``[b_bias, features]``,
            sign, trainable scale), as the reference code's ``BitLinear`` stores it; absent
            (None) unless :meth:`quantize_bias_` was called.
    """

    #: The representation used for encode/decode/re-quantize (see representation.py).
    representation: ClassVar[BitPlaneRepresentation] = SIGN_MAGNITUDE
    #: ``"conv"`` or ``"linear"`` (as in :class:`fedsim.spec.LayerSpec`).
    kind: ClassVar[str] = ""

    planes: nn.Parameter
    scale: nn.Parameter
    sign: Tensor
    place: Tensor
    bias: nn.Parameter | None
    bias_planes: nn.Parameter | None
    bias_scale: nn.Parameter | None
    bias_sign: Tensor | None
    bias_place: Tensor | None

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        bias_features: int | None,
        bits: int,
        *,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        bits = check_bits(bits)
        factory: dict[str, Any] = {"device": device, "dtype": dtype or torch.float32}
        self.weight_shape = tuple(int(d) for d in weight_shape)
        self.planes = nn.Parameter(torch.zeros((bits, *self.weight_shape), **factory))
        self.scale = nn.Parameter(torch.zeros((), **factory))
        self.register_buffer("sign", torch.ones(self.weight_shape, **factory))
        self.register_buffer("place", place_values(bits, **factory), persistent=False)
        if bias_features is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.zeros(bias_features, **factory))
        self.register_parameter("bias_planes", None)
        self.register_parameter("bias_scale", None)
        self.register_buffer("bias_sign", None)
        self.register_buffer("bias_place", None, persistent=False)

    # -- bit-width -------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Current bit-width (``planes.shape[0]``; a Python int, no device sync)."""
        return self.planes.shape[0]

    @property
    def weight_numel(self) -> int:
        return self.sign.numel()

    def set_bits_(self, bits: int) -> None:
        """Resize the plane tensor to ``bits`` planes (contents undefined until re-encoded).

        Keeps the ``planes`` Parameter object (swaps its ``.data``) and drops its gradient.
        """
        bits = check_bits(bits)
        if bits == self.bits:
            return
        p = self.planes
        p.data = p.data.new_empty((bits, *self.weight_shape))
        p.grad = None
        self.place = place_values(bits, device=p.device, dtype=p.dtype)

    def keep_planes_(self, lo: int, hi: int) -> None:
        """Keep planes ``lo..hi-1`` only (LSB first); the scale is the caller's to adjust.

        Used by precision reduction; copies the kept planes into a right-sized tensor so no
        stale storage is kept alive (or serialised) behind a view.
        """
        self.place = _keep_plane_range(self.planes, lo, hi, self.place)

    # -- encode / decode --------------------------------------------------------------------
    @torch.no_grad()
    def load_float_weight_(self, weight: Tensor, bits: int | None = None) -> None:
        """Binarize a float weight into this layer (in place), optionally at new ``bits``.

        Reuses the plane, sign and scale storage when the bit-width does not change.
        """
        if tuple(weight.shape) != self.weight_shape:
            raise ValueError(
                f"weight of shape {tuple(weight.shape)} does not fit a layer of weight shape "
                f"{self.weight_shape}"
            )
        if bits is not None:
            self.set_bits_(bits)
        scale = self.representation.encode_(weight, self.planes.data, self.sign)
        self.scale.data.copy_(scale)

    @torch.no_grad()
    def dequantized_weight(self) -> Tensor:
        """The float weight the forward pass uses (a new tensor, no autograd history)."""
        return self.representation.decode(self.planes, self.sign, self.scale)

    @torch.no_grad()
    def uploaded_weight(self) -> Tensor:
        """The float weight a client reports (the code's ``to_float``: no clip; equal to
        :meth:`dequantized_weight` on clean planes up to the last bit)."""
        return self.representation.decode_upload(self.planes, self.sign, self.scale)

    @torch.no_grad()
    def uploaded_bias(self) -> Tensor | None:
        """The reported bias (see :meth:`uploaded_weight`)."""
        if self.bias_planes is None:
            return self.dequantized_bias()
        assert self.bias_sign is not None and self.bias_scale is not None
        return self.representation.decode_upload(self.bias_planes, self.bias_sign,
                                                 self.bias_scale)

    def quantized_weight(self) -> Tensor:
        """The forward weight, differentiable w.r.t. planes and scale (STE)."""
        return BitPlaneSTE.apply(
            self.planes, self.sign, self.scale, self.place, self.representation
        )

    @torch.no_grad()
    def requantize_(self) -> None:
        """Snap the planes back to clean 0/1 planes (after a manual edit of ``planes``)."""
        self.representation.requantize_(self.planes.data, self.sign, place=self.place)

    # -- the bias as bit planes (the reference code's BitLinear; ``bias: planes``) ----------
    @property
    def has_bias(self) -> bool:
        return self.bias is not None or self.bias_planes is not None

    @property
    def bias_bits(self) -> int:
        """Planes of the bias (0 when the bias is float or absent)."""
        return 0 if self.bias_planes is None else self.bias_planes.shape[0]

    @torch.no_grad()
    def quantize_bias_(self, bits: int | None = None) -> None:
        """Give the float bias bit planes at ``bits`` (default: the weight's bits).

        Why: the reference code stores its FC bias this way, with a trainable scale; the
        bias then moves only when its integer value changes, unlike a float bias. No-op when
        the layer has no bias or the bias already has planes.
        """
        if self.bias is None:
            return
        bias = self.bias.detach().clone()
        del self._parameters["bias"]
        self.register_parameter("bias", None)
        n = bias.numel()
        factory: dict[str, Any] = {"device": bias.device, "dtype": bias.dtype}
        self.bias_planes = nn.Parameter(torch.zeros((1, n), **factory))
        self.bias_scale = nn.Parameter(torch.zeros((), **factory))
        self.bias_sign = torch.ones(n, **factory)
        self.bias_place = place_values(1, **factory)
        self.load_float_bias_(bias, self.bits if bits is None else bits)

    def set_bias_bits_(self, bits: int) -> None:
        """Resize the bias planes (contents undefined until re-encoded); keeps the Parameter."""
        bits = check_bits(bits)
        p = self.bias_planes
        assert p is not None
        if bits != p.shape[0]:
            p.data = p.data.new_empty((bits, p.shape[1]))
            p.grad = None
            self.bias_place = place_values(bits, device=p.device, dtype=p.dtype)

    def keep_bias_planes_(self, lo: int, hi: int) -> None:
        """Precision reduction of the bias planes (see :meth:`keep_planes_`)."""
        assert self.bias_planes is not None
        self.bias_place = _keep_plane_range(self.bias_planes, lo, hi, self.bias_place)

    @torch.no_grad()
    def load_float_bias_(self, bias: Tensor, bits: int | None = None) -> None:
        """Binarize a float bias into the bias planes (in place), optionally at new ``bits``."""
        assert self.bias_planes is not None and self.bias_sign is not None
        if bits is not None:
            self.set_bias_bits_(bits)
        scale = self.representation.encode_(bias, self.bias_planes.data, self.bias_sign)
        assert self.bias_scale is not None
        self.bias_scale.data.copy_(scale)

    def current_bias(self) -> Tensor | None:
        """The bias of the forward pass: the float one, or the planes' value (STE)."""
        if self.bias_planes is None:
            return self.bias
        return BitPlaneSTE.apply(
            self.bias_planes, self.bias_sign, self.bias_scale, self.bias_place,
            self.representation,
        )

    @torch.no_grad()
    def dequantized_bias(self) -> Tensor | None:
        """The float bias the forward pass uses (a new tensor), or None."""
        if self.bias_planes is None:
            return None if self.bias is None else self.bias.detach().clone()
        assert self.bias_sign is not None and self.bias_scale is not None
        return self.representation.decode(self.bias_planes, self.bias_sign, self.bias_scale)

    @torch.no_grad()
    def requantize_bias_(self, *, code: bool = False) -> None:
        """Snap the bias planes back to the grid after an optimizer step: clean 0/1 planes,
        or (``code``) the reference code's re-quantization."""
        if self.bias_planes is None:
            return
        if code:
            self.representation.requantize_code_(self.bias_planes.data, place=self.bias_place)
        else:
            assert self.bias_sign is not None
            self.representation.requantize_(self.bias_planes.data, self.bias_sign,
                                            place=self.bias_place)

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A state saved at another bit-width resizes the planes instead of failing.
        planes = state_dict.get(prefix + "planes")
        if planes is not None and planes.dim() == self.planes.dim():
            self.set_bits_(int(planes.shape[0]))
        bplanes = state_dict.get(prefix + "bias_planes")
        if bplanes is not None and self.bias_planes is not None and bplanes.dim() == 2:
            self.set_bias_bits_(int(bplanes.shape[0]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr_bits(self) -> str:
        return f"bits={self.bits}, levels={levels(self.bits)}"


class QConv2d(BitPlaneLayer):
    """Bit-plane ``nn.Conv2d``: same arguments and forward, weight from planes (STE)."""

    kind = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        bits: int = 8,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        kernel = _pair(kernel_size)
        if padding_mode != "zeros" and isinstance(padding, str):
            raise ValueError("string padding is only supported with padding_mode='zeros'")
        super().__init__(
            (out_channels, in_channels // groups, *kernel),
            out_channels if bias else None,
            bits,
            device=device,
            dtype=dtype,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel
        self.stride = _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        if padding_mode != "zeros":
            self._reversed_padding_repeated_twice = _reverse_repeat_tuple(self.padding, 2)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, bits: int) -> QConv2d:
        """Bit-plane copy of ``conv`` at ``bits`` bits (weight binarized, bias copied)."""
        q = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            conv.padding_mode,
            bits=bits,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        q.load_float_weight_(conv.weight)
        if conv.bias is not None and q.bias is not None:
            q.bias.data.copy_(conv.bias.detach())
        return q

    @torch.no_grad()
    def to_float(self) -> nn.Conv2d:
        """``nn.Conv2d`` holding the de-quantized weight (no random init is drawn)."""
        conv = skip_init(
            nn.Conv2d,
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.has_bias,
            padding_mode=self.padding_mode,
            device=self.planes.device,
            dtype=self.planes.dtype,
        )
        conv.weight.copy_(self.dequantized_weight())
        bias = self.dequantized_bias()
        if bias is not None:
            conv.bias.copy_(bias)
        return conv

    def forward(self, x: Tensor) -> Tensor:
        w = self.quantized_weight()
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, w, self.current_bias(), self.stride, _pair(0), self.dilation,
                            self.groups)
        return F.conv2d(x, w, self.current_bias(), self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.has_bias:
            s += ", bias=False"
        elif self.bias_planes is not None:
            s += f", bias_bits={self.bias_bits}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return f"{s}, {self.extra_repr_bits()}"


class QLinear(BitPlaneLayer):
    """Bit-plane ``nn.Linear``: same arguments and forward, weight from planes (STE)."""

    kind = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        bits: int = 8,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            (out_features, in_features),
            out_features if bias else None,
            bits,
            device=device,
            dtype=dtype,
        )
        self.in_features = in_features
        self.out_features = out_features

    @classmethod
    def from_float(cls, linear: nn.Linear, bits: int) -> QLinear:
        """Bit-plane copy of ``linear`` at ``bits`` bits (weight binarized, bias copied)."""
        q = cls(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            bits=bits,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        q.load_float_weight_(linear.weight)
        if linear.bias is not None and q.bias is not None:
            q.bias.data.copy_(linear.bias.detach())
        return q

    @torch.no_grad()
    def to_float(self) -> nn.Linear:
        """``nn.Linear`` holding the de-quantized weight (no random init is drawn)."""
        linear = skip_init(
            nn.Linear,
            self.in_features,
            self.out_features,
            bias=self.has_bias,
            device=self.planes.device,
            dtype=self.planes.dtype,
        )
        linear.weight.copy_(self.dequantized_weight())
        bias = self.dequantized_bias()
        if bias is not None:
            linear.bias.copy_(bias)
        return linear

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.quantized_weight(), self.current_bias())

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.has_bias}, {self.extra_repr_bits()}"
            + (f", bias_bits={self.bias_bits}" if self.bias_planes is not None else "")
        )


def quantized_class_for(module: nn.Module) -> type[QConv2d] | type[QLinear]:
    """The bit-plane class that replaces ``module`` (an ``nn.Conv2d`` or ``nn.Linear``)."""
    if isinstance(module, nn.Conv2d):
        return QConv2d
    if isinstance(module, nn.Linear):
        return QLinear
    raise TypeError(f"no bit-plane layer for {type(module).__name__}")


class ActFakeQuant(nn.Module):
    """Activation fake-quantizer for an :class:`ActivationSlot` (docs/algorithm.md section 1).

    ``y = round(clip(x) * L / a) * a / L`` with ``L = 2^bits - 1`` (15 at 4 bits), ``clip``
    the ReLU6-style bound and ``a`` the max of the clipped batch tensor (computed per call, so
    there is no observer state and nothing to save or send). Straight-through gradient inside
    the clip range (:class:`~fedsim.quant.ste.ActFakeQuantSTE`).

    ``enabled`` is a plain Python attribute (not a tensor flag: no sync per forward); with it
    False the module is the identity, e.g. to evaluate with float activations.
    """

    def __init__(
        self,
        bits: int = DEFAULT_ACT_BITS,
        *,
        clip: float | None = DEFAULT_ACT_CLIP,
        enabled: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_ACT_BITS:
            raise ValueError(
                f"activation bits must be an integer in 1..{MAX_ACT_BITS}, got {bits!r}"
            )
        if clip is not None and not clip > 0:
            raise ValueError(f"activation clip must be positive or None, got {clip!r}")
        self.bits = bits
        self.clip = None if clip is None else float(clip)
        self.enabled = enabled

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        return ActFakeQuantSTE.apply(x, levels(self.bits), self.clip)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, clip={self.clip}, enabled={self.enabled}"
