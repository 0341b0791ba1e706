"""Plain small CNNs: the deployable students of the embedded defaults."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, chain, scaled
from cgankd.models.zoo import MODELS


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class ConvNet(Backbone):
    def __init__(self, channels: list[int], in_channels: int, num_outputs: int) -> None:
        super().__init__()
        blocks, cin = [], in_channels
        for c in channels:
            blocks.append(_block(cin, c))
            cin = c
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, self.body)


def _register(name: str, channels: list[int]) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0) -> ConvNet:
        return ConvNet([scaled(c, width) for c in channels], in_channels, num_outputs)

    MODELS.register(name)(build)


_register("convnet_xs", [8, 16, 32])
_register("convnet_s", [16, 32, 64])
_register("convnet_m", [32, 64, 128])
