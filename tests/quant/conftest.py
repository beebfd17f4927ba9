"""Fixtures of the quantization-core tests: a tiny hand-built model with activation slots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from fedsim.models.slots import ActivationSlot, mark_float


class TinyNet(nn.Module):
    """conv(bias)-bn-relu-slot, float 1x1 conv, grouped conv-relu-slot, fc-relu-slot, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.act1 = ActivationSlot()
        self.skip = mark_float(nn.Conv2d(8, 8, 1, bias=False))
        self.conv2 = nn.Conv2d(8, 4, 3, stride=2, padding=1, bias=False, groups=2)
        self.relu2 = nn.ReLU()
        self.act2 = ActivationSlot()
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.relu3 = nn.ReLU()
        self.act3 = ActivationSlot()
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.relu1(self.bn1(self.conv1(x))))
        x = self.act2(self.relu2(self.conv2(self.skip(x))))
        x = self.act3(self.relu3(self.fc1(x.flatten(1))))
        return self.fc2(x)


N_TINY_LAYERS = 4  # conv1, conv2, fc1, fc2 (skip is float-only)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run these small-tensor tests on one intra-op thread (restored afterwards).

    On a shared 2-core machine, OpenMP's 2-thread parallel regions stall for a scheduler
    slice whenever another process holds a core, turning microsecond ops into milliseconds.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def tiny() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def tiny_input() -> torch.Tensor:
    return torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
