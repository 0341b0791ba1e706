"""ShuffleNetV2 1.0x for small images (RepDistiller's CIFAR variant: 1x1 stem, 116/232/464, 1024-d head)."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, chain, conv_bn_relu, scaled
from cgankd.models.shufflenet import channel_shuffle
from cgankd.models.zoo import MODELS


def _branch(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout, 1), conv_bn_relu(cout, cout, 3, stride, groups=cout, relu=False),
                         conv_bn_relu(cout, cout, 1))


class Unit(nn.Module):
    """Split the channels in half, transform one half, concatenate, shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch = _branch(channels // 2, channels // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([a, self.branch(b)], 1), 2)


class DownUnit(nn.Module):
    """Both halves see the whole input at stride 2; the channel count doubles (or becomes ``cout``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        half = cout // 2
        self.left = nn.Sequential(conv_bn_relu(cin, cin, 3, 2, groups=cin, relu=False), conv_bn_relu(cin, half, 1))
        self.right = nn.Sequential(conv_bn_relu(cin, half, 1),
                                   conv_bn_relu(half, half, 3, 2, groups=half, relu=False),
                                   conv_bn_relu(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1), 2)


class ShuffleNetV2(Backbone):
    def __init__(self, in_channels: int, num_outputs: int, width: float) -> None:
        super().__init__()
        self.stem = conv_bn_relu(in_channels, 24, 1)
        cin, stages = 24, []
        for planes, n in zip((116, 232, 464), (3, 7, 3), strict=True):
            cout = scaled(planes, width) // 2 * 2
            stages.append(nn.Sequential(DownUnit(cin, cout), *[Unit(cout) for _ in range(n)]))
            cin = cout
        self.stages_ = nn.ModuleList(stages)
        self.head = conv_bn_relu(cin, 1024, 1)
        self.fc = nn.Linear(1024, num_outputs)
        self.feat_dim = 1024

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, [self.stem, *self.stages_, self.head])


@MODELS.register("ShuffleNetV2")
def build(in_channels: int, num_outputs: int, width: float = 1.0) -> ShuffleNetV2:
    return ShuffleNetV2(in_channels, num_outputs, width)
