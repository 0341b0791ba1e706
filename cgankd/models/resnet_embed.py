"""The improved CcGAN's x2y network (the cGAN-KD authors' ``ResNet_embed``, UTKFace/models/ResNet_embed.py
at 8fcb117): a 3x3 stem of 64 channels at full size, then four stages of basic blocks (64, 128, 256, 512
channels) that each start by halving the size, and a global average pool; 512 features.
``gan.ccgan.embed_arch: resnet34_embed`` (their choice) or ``resnet18_embed``; as a zoo classifier a
linear layer reads the 512."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, conv_bn_relu, scaled
from cgankd.models.resnet import BasicBlock
from cgankd.models.zoo import MODELS


class ResNetEmbed(Backbone):
    def __init__(self, blocks: list[int], in_channels: int, num_outputs: int, width: float = 1.0) -> None:
        super().__init__()
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = conv_bn_relu(in_channels, widths[0])
        stages, cin = [], widths[0]
        for n, cout in zip(blocks, widths, strict=True):
            stages.append(nn.Sequential(*(BasicBlock(cin if j == 0 else cout, cout, 2 if j == 0 else 1)
                                          for j in range(n))))
            cin = cout
        self.layers = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [self.stem(x)]
        for layer in self.layers:
            maps.append(layer(maps[-1]))
        return maps


def _register(name: str, blocks: list[int]) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0) -> ResNetEmbed:
        return ResNetEmbed(blocks, in_channels, num_outputs, width)

    MODELS.register(name)(build)


_register("resnet18_embed", [2, 2, 2, 2])
_register("resnet34_embed", [3, 4, 6, 3])
