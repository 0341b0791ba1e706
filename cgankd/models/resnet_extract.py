"""The cGAN-KD authors' feature network for cDR-RS on classification (their ``ResNet_extract``,
CIFAR-100/make_fake_datasets/models/ResNet_extract.py at 8fcb117): a ResNet of 64-512 channels whose
pooled features are mapped by one linear layer to C x H x W values (3,072 at 32 px: the "3,072-d"
features the density-ratio model reads), then classified by an MLP (batch norm, ReLU and dropout 0.5
before each of 1,024, 256 and the classes). At 128 px and above (their ImageNet-100 copy) a 2 x 2
max-pool follows each of the first two stages. ``features(x)`` is the linear layer's output (what cDR-RS
reads); ``quality_features(x)`` the pooled 512 it is computed from (what FID reads)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.models.base import Backbone, conv_bn_relu, scaled
from cgankd.models.resnet import BasicBlock
from cgankd.models.zoo import MODELS

WIDE_FROM = 128  # the resolution from which the ImageNet-100 copy's two max-pools apply


class ResNetExtract(Backbone):
    def __init__(self, blocks: list[int], in_channels: int, num_outputs: int, resolution: int,
                 width: float = 1.0) -> None:
        super().__init__()
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = conv_bn_relu(in_channels, widths[0])
        stages, cin = [], widths[0]
        for i, (n, cout) in enumerate(zip(blocks, widths, strict=True)):
            layer = [BasicBlock(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            if i < 2 and resolution >= WIDE_FROM:
                layer.append(nn.MaxPool2d(2, 2))
            stages.append(nn.Sequential(*layer))
            cin = cout
        self.layers = nn.ModuleList(stages)
        self.feat_dim = in_channels * resolution * resolution
        self.project = nn.Linear(cin, self.feat_dim)
        self.head = nn.Sequential(*(m for a, b in ((self.feat_dim, 1024), (1024, 256))
                                    for m in (nn.BatchNorm1d(a), nn.ReLU(), nn.Dropout(0.5), nn.Linear(a, b))),
                                  nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, num_outputs))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [self.stem(x)]
        for layer in self.layers:
            maps.append(layer(maps[-1]))
        return maps

    def _project(self, last: torch.Tensor) -> torch.Tensor:
        return self.project(F.adaptive_avg_pool2d(last, 1).flatten(1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._project(self.stages(x)[-1])

    def quality_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 512: the C x H x W features are an affine image of them (rank 512 at most), whose
        covariances FID would need at C x H x W squared (100 classes x 3,072^2 for CIFAR-100's Intra-FID;
        49,152^2 at 128 px)."""
        return F.adaptive_avg_pool2d(self.stages(x)[-1], 1).flatten(1)

    def forward(self, x: torch.Tensor, is_feat: bool = False):  # noqa: ANN201 (tensor or pair)
        maps = self.stages(x)
        out = self.head(self._project(maps[-1]))
        return (maps, out) if is_feat else out


def _register(name: str, blocks: list[int]) -> None:
    def build(in_channels: int, num_outputs: int, resolution: int, width: float = 1.0) -> ResNetExtract:
        return ResNetExtract(blocks, in_channels, num_outputs, resolution, width)

    MODELS.register(name)(build)


_register("resnet18_extract", [2, 2, 2, 2])
_register("resnet34_extract", [3, 4, 6, 3])
