"""CIFAR DenseNet-BC (Huang et al., 2017), as the cGAN-KD authors train it to filter and relabel fakes
(their ``--samp_filter_precnn_net densenet121``): a 3x3 stem of twice the growth rate, four dense
blocks of bottleneck layers (BN-ReLU-1x1 conv to 4x growth, BN-ReLU-3x3 conv to growth, its output
concatenated before its input), a transition halving the channels and the size between blocks, and a
BN-ReLU, pooled linear head. densenet121: blocks of 6, 12, 24, 16 layers, growth 32; densenet161: 6,
12, 36, 24, growth 48. Their order of concatenation is kept, so a weight of theirs lands on the same
input channel. From 128 px the stem is their ImageNet-100 one (a 4x4 stride-2 conv, BN, ReLU, a 3x3
stride-2 max-pool; ImageNet-100/make_fake_datasets/models/densenet.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import WIDE_FROM, Backbone, chain, scaled, wide_stem
from cgankd.models.zoo import MODELS

CONFIGS = {"densenet121": ((6, 12, 24, 16), 32), "densenet161": ((6, 12, 36, 24), 48)}


class Bottleneck(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(4 * growth), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return torch.cat([new, x], 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))


class DenseNet(Backbone):
    def __init__(self, blocks: tuple[int, ...], growth: int, in_channels: int, num_outputs: int,
                 width: float, reduction: float = 0.5, resolution: int = 32) -> None:
        super().__init__()
        growth = scaled(growth, width)
        c = 2 * growth
        stem = (nn.Sequential(*wide_stem(in_channels, c)) if resolution >= WIDE_FROM
                else nn.Conv2d(in_channels, c, 3, padding=1, bias=False))
        stages: list[nn.Module] = [stem]
        for i, n in enumerate(blocks):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(Bottleneck(c, growth))
                c += growth
            if i < len(blocks) - 1:
                layers.append(Transition(c, int(c * reduction)))
                c = int(c * reduction)
            else:
                layers += [nn.BatchNorm2d(c), nn.ReLU()]
            stages.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(stages)
        self.fc = nn.Linear(c, num_outputs)
        self.feat_dim = c

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, self.blocks)


def _register(name: str) -> None:
    blocks, growth = CONFIGS[name]

    def build(in_channels: int, num_outputs: int, width: float = 1.0, resolution: int = 32) -> DenseNet:
        return DenseNet(blocks, growth, in_channels, num_outputs, width, resolution=resolution)

    MODELS.register(name)(build)


for _name in CONFIGS:
    _register(_name)
