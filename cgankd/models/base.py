"""The interface every zoo backbone implements: stage feature maps, pooled features, a head.

``forward(x)`` returns logits (classification) or values (regression); ``forward(x, is_feat=True)``
returns ``(maps, out)`` where ``maps`` are the outputs of the network's stages, from the stem to
the last one, for feature-based distillation (RepDistiller's ``is_feat``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Backbone(nn.Module):
    feat_dim: int
    fc: nn.Linear

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (pooled last stage)."""
        return F.adaptive_avg_pool2d(self.stages(x)[-1], 1).flatten(1)

    def quality_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features the fakes' quality measures (FID, Intra-FID) read: the penultimate ones."""
        return self.features(x)

    def forward(self, x: torch.Tensor, is_feat: bool = False):  # noqa: ANN201 (tensor or pair)
        maps = self.stages(x)
        out = self.fc(F.adaptive_avg_pool2d(maps[-1], 1).flatten(1))
        return (maps, out) if is_feat else out


def chain(x: torch.Tensor, blocks: list[nn.Module] | nn.ModuleList | nn.Sequential) -> list[torch.Tensor]:
    """Apply ``blocks`` in turn; the output of every one (the stage feature maps)."""
    maps = []
    for block in blocks:
        x = block(x)
        maps.append(x)
    return maps


def scaled(channels: int, width: float, floor: int = 4) -> int:
    """A channel count times the width multiplier (at least ``floor``)."""
    return max(floor, int(round(channels * width)))


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> nn.Sequential:
    """conv (same padding) -> BN -> optional ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), *([nn.ReLU(inplace=True)] if relu else []))


WIDE_FROM = 128  # from this size the cGAN-KD authors' ImageNet-100 networks start with a strided stem


def wide_stem(cin: int, cout: int) -> list[nn.Module]:
    """Their ImageNet-100 stem (``#for imagenet100`` in their RepDistiller models): a 4x4 stride-2 conv, BN,
    ReLU and a 3x3 stride-2 max-pool, a quarter of the size before the CIFAR stages."""
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1)]

