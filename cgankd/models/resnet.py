"""CIFAR-style ResNets with the names RepDistiller uses (resnet8 ... resnet110, resnet8x4, resnet32x4); from
128 px the cGAN-KD authors' ImageNet-100 stem (a 4x4 stride-2 conv, then a 3x3 stride-2 max-pool)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import WIDE_FROM, Backbone, scaled
from cgankd.models.zoo import MODELS


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class CifarResNet(Backbone):
    """Stem of ``filters[0]`` channels, then one stage of (depth - 2) / 6 blocks per later entry."""

    def __init__(self, depth: int, filters: list[int], in_channels: int, num_outputs: int,
                 resolution: int = 32, first_stride: int = 1) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("depth must be 6n + 2")
        n = (depth - 2) // 6
        self.wide = resolution >= WIDE_FROM  # the authors' ImageNet-100 stem: 4x4 stride 2, then a max-pool
        self.conv1 = (nn.Conv2d(in_channels, filters[0], 4, 2, 1, bias=False) if self.wide
                      else nn.Conv2d(in_channels, filters[0], 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(filters[0])
        layers, cin = [], filters[0]
        for i, cout in enumerate(filters[1:]):
            for j in range(n):
                layers.append(BasicBlock(cin, cout, (2 if i > 0 else first_stride) if j == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)  # flat, so saved state dicts keep their keys
        self.blocks_per_stage = n
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.wide:
            x = F.max_pool2d(x, 3, 2, 1)
        maps = [x]
        for i, block in enumerate(self.layers, start=1):
            x = block(x)
            if i % self.blocks_per_stage == 0:
                maps.append(x)
        return maps


def _register(name: str, depth: int, filters: list[int]) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0, resolution: int = 32) -> CifarResNet:
        return CifarResNet(depth, [scaled(f, width) for f in filters], in_channels, num_outputs, resolution)

    MODELS.register(name)(build)


for _depth in (8, 14, 20, 32, 44, 56, 110):
    _register(f"resnet{_depth}", _depth, [16, 16, 32, 64])
_register("resnet8x4", 8, [32, 64, 128, 256])
_register("resnet32x4", 32, [32, 64, 128, 256])
