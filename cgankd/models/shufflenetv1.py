"""ShuffleNetV1 for small images (RepDistiller's CIFAR variant: groups 3, 240/480/960 channels, 4/8/4 units)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import Backbone, chain, conv_bn_relu, scaled
from cgankd.models.shufflenet import channel_shuffle
from cgankd.models.zoo import MODELS


class Unit(nn.Module):
    """Group 1x1 -> shuffle -> depthwise 3x3 -> group 1x1; stride 2 concatenates an avg-pooled input."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int, first: bool) -> None:
        super().__init__()
        self.stride = stride
        self.groups = 1 if first else groups
        branch = cout - cin if stride == 2 else cout
        mid = branch // 4
        self.reduce = conv_bn_relu(cin, mid, 1, groups=self.groups)
        self.depthwise = conv_bn_relu(mid, mid, 3, stride, groups=mid, relu=False)
        self.expand = conv_bn_relu(mid, branch, 1, groups=groups, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = channel_shuffle(self.reduce(x), self.groups)
        o = self.expand(self.depthwise(o))
        if self.stride == 2:
            return F.relu(torch.cat([o, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(o + x)


class ShuffleNetV1(Backbone):
    def __init__(self, in_channels: int, num_outputs: int, width: float, groups: int = 3) -> None:
        super().__init__()
        stem = 24
        self.stem = conv_bn_relu(in_channels, stem, 1)
        cin, stages = stem, []
        for planes, n in zip((240, 480, 960), (4, 8, 4), strict=True):
            cout = scaled(planes, width, floor=4 * groups) // (4 * groups) * (4 * groups)
            units = [Unit(cin if i == 0 else cout, cout, 2 if i == 0 else 1, groups, first=cin == stem and i == 0)
                     for i in range(n)]
            stages.append(nn.Sequential(*units))
            cin = cout
        self.stages_ = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, [self.stem, *self.stages_])


@MODELS.register("ShuffleNetV1")
def build(in_channels: int, num_outputs: int, width: float = 1.0) -> ShuffleNetV1:
    return ShuffleNetV1(in_channels, num_outputs, width)
