"""CIFAR-style ResNet-20/32/44/56 (He et al. 2016, section 4.2), the FedMPQ paper's model.

Three stages of 16/32/64 channels with ``n = (depth - 2) / 6`` BasicBlocks each, a 3x3 stem,
BatchNorm everywhere, global average pooling and one FC layer. Works for any input channels
and image size (stride-2 convs and the option-A subsampling both give ``ceil(H / 2)``).

Shortcuts when the shape changes:

* ``"A"`` (default, the original CIFAR ResNet of He et al.): parameter-free, strided
  subsampling plus zero padding of the new channels, so every conv is a 3x3 quantized conv.
* ``"B"`` (what the FedMPQ authors' code uses): 1x1 conv + BatchNorm; the 1x1 conv is marked
  with :func:`~fedsim.models.slots.mark_float` because FedMPQ keeps shortcut convs float.

Each block is ``conv1-bn1-relu1-act1-conv2-bn2 (+ shortcut) -relu2-act2``: activations are
fake-quantized after the first ReLU and after the residual ReLU, never after the stem.
Init follows the reference code: the 3x3 convs ``normal(0, sqrt(2 / (k^2 * out_channels)))``
(Kaiming fan-out), BatchNorm weight 1 and bias 0; the FC layer and the option-B 1x1 shortcut
convs keep PyTorch's default (the code re-initialises only its bit-plane convs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedsim.models.slots import ActivationSlot, is_float_only, mark_float

RESNET_DEPTHS: dict[str, int] = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56}


class PadShortcut(nn.Module):
    """Option-A shortcut: take every ``stride``-th pixel and zero-pad the extra channels."""

    def __init__(self, stride: int, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = out_planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            lo = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """Global average pooling computed as ``avg_pool2d`` over the whole map, as the
    reference code does: the adaptive kernel sums in another order, and the last-bit
    difference it leaves in the logits is enough to make two 4-bit-activation runs part after
    one step (docs/fidelity.md)."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, tuple(x.shape[-2:]))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection and two activation slots."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.act1 = ActivationSlot()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(stride, in_planes, planes)
        else:
            self.shortcut = nn.Sequential(
                mark_float(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)),
                nn.BatchNorm2d(planes),
            )
        self.relu2 = nn.ReLU()
        self.act2 = ActivationSlot()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.relu1(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.act2(self.relu2(out + self.shortcut(x)))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images; see the module docstring."""

    def __init__(
        self, *, depth: int, in_channels: int, num_classes: int, shortcut: str = "A"
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = GlobalAvgPool()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)
        self.init_weights_()

    def init_weights_(self) -> None:
        """The reference code's init on top of PyTorch's defaults (global torch RNG)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not is_float_only(m):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.flatten(self.pool(out)))
