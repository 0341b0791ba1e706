"""The cGAN-KD authors' regression ResNets (UTKFace/models/resnet.py and SteeringAngle's at 8fcb117; their
UTKFace and Steering Angle students): CIFAR ResNets whose three stages each halve the size (64 px -> 8x8),
pooled, then 512 and 512 (Linear, BatchNorm1d, ReLU each) and a Linear to the output, with a ReLU for one
output (the scaled label in [0, 1]). ``resnet8_mlp`` ... ``resnet110_mlp``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import scaled
from cgankd.models.resnet import CifarResNet
from cgankd.models.zoo import MODELS


class ResNetMLP(CifarResNet):
    def __init__(self, depth: int, filters: list[int], in_channels: int, num_outputs: int, width: float) -> None:
        super().__init__(depth, filters, in_channels, num_outputs, first_stride=2)
        hidden = scaled(512, width)
        self.mlp = nn.Sequential(nn.Linear(self.feat_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        del self.fc  # registered again after the MLP: the tensors' order is theirs
        self.fc = nn.Linear(hidden, num_outputs)
        self.out = nn.ReLU() if num_outputs == 1 else nn.Identity()

    def forward(self, x: torch.Tensor, is_feat: bool = False):  # noqa: ANN201 (tensor or pair)
        maps = self.stages(x)
        out = self.out(self.fc(self.mlp(F.adaptive_avg_pool2d(maps[-1], 1).flatten(1))))
        return (maps, out) if is_feat else out


def _register(name: str, depth: int) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0) -> ResNetMLP:
        return ResNetMLP(depth, [scaled(f, width) for f in (16, 16, 32, 64)], in_channels, num_outputs, width)

    MODELS.register(name)(build)


for _depth in (8, 14, 20, 32, 44, 56, 110):
    _register(f"resnet{_depth}_mlp", _depth)
