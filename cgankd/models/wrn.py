"""Wide ResNets (Zagoruyko & Komodakis) with RepDistiller's names: wrn_16_1 ... wrn_40_2.

Pre-activation blocks; ``wrn_D_K`` has depth D = 6n + 4 and widening factor K.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import Backbone, chain, scaled
from cgankd.models.zoo import MODELS


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.short = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        skip = x if self.short is None else self.short(o)
        o = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return o + skip


class WideResNet(Backbone):
    def __init__(self, depth: int, widen: int, in_channels: int, num_outputs: int, width: float) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("depth must be 6n + 4")
        n = (depth - 4) // 6
        chans = [scaled(c, width) for c in (16, 16 * widen, 32 * widen, 64 * widen)]
        self.conv1 = nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=False)
        groups, cin = [], chans[0]
        for i, cout in enumerate(chans[1:]):
            blocks = [PreActBlock(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0 else 1)
                      for j in range(n)]
            groups.append(nn.Sequential(*blocks))
            cin = cout
        self.groups = nn.ModuleList(groups)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = chain(x, [self.conv1, *self.groups])
        maps[-1] = F.relu(self.bn(maps[-1]))
        return maps


def _register(depth: int, widen: int) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0) -> WideResNet:
        return WideResNet(depth, widen, in_channels, num_outputs, width)

    MODELS.register(f"wrn_{depth}_{widen}")(build)


for _d, _k in ((16, 1), (16, 2), (40, 1), (40, 2)):
    _register(_d, _k)
