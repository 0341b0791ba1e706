"""MobileNetV2 for small images (RepDistiller's CIFAR variant: expansion 6, width 0.5, 1280-d head)."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, chain, conv_bn_relu, scaled
from cgankd.models.zoo import MODELS

# expansion t, channels c, repeats n, stride s of the first repeat
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.use_skip = stride == 1 and cin == cout
        self.body = nn.Sequential(conv_bn_relu(cin, mid, 1), conv_bn_relu(mid, mid, 3, stride, groups=mid),
                                  conv_bn_relu(mid, cout, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.use_skip else self.body(x)


class MobileNetV2(Backbone):
    def __init__(self, in_channels: int, num_outputs: int, width: float = 0.5, head: int = 1280) -> None:
        super().__init__()
        cin = scaled(32, width)
        self.stem = conv_bn_relu(in_channels, cin, 3, 2)
        groups = []
        for t, c, n, s in SETTINGS:
            cout = scaled(c, width)
            groups.append(nn.Sequential(*[InvertedResidual(cin if i == 0 else cout, cout, s if i == 0 else 1, t)
                                          for i in range(n)]))
            cin = cout
        self.groups = nn.ModuleList(groups)
        self.head = conv_bn_relu(cin, head, 1)
        self.fc = nn.Linear(head, num_outputs)
        self.feat_dim = head

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, [self.stem, *self.groups, self.head])


@MODELS.register("MobileNetV2")
def build(in_channels: int, num_outputs: int, width: float = 1.0) -> MobileNetV2:
    """``width`` multiplies the published 0.5 (so 1.0 is RepDistiller's model)."""
    return MobileNetV2(in_channels, num_outputs, 0.5 * width)
