"""CIFAR VGGs with BN (RepDistiller's vgg8 / vgg11 / vgg13, and vgg16 / vgg19, the conv stacks of the
cGAN-KD authors' regression filter networks): five conv blocks, max-pool between, a pooled linear
head (their regression VGGs end in a two-layer MLP instead)."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, chain, conv_bn_relu, scaled
from cgankd.models.zoo import MODELS

CONFIGS = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class VGG(Backbone):
    def __init__(self, blocks: list[list[int]], in_channels: int, num_outputs: int, width: float) -> None:
        super().__init__()
        layers, cin = [], in_channels
        for i, block in enumerate(blocks):
            mods: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for c in block:
                mods.append(conv_bn_relu(cin, scaled(c, width)))
                cin = scaled(c, width)
            layers.append(nn.Sequential(*mods))
        self.blocks = nn.ModuleList(layers)
        self.fc = nn.Linear(cin, num_outputs)
        self.feat_dim = cin

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, self.blocks)


def _register(name: str) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0) -> VGG:
        return VGG(CONFIGS[name], in_channels, num_outputs, width)

    MODELS.register(name)(build)


for _name in CONFIGS:
    _register(_name)
